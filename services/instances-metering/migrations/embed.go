// Package migrations embeds the instances-metering service's SQL migrations.
package migrations

import "embed"

// FS holds the *.up.sql files, applied in name order by pg.Migrate.
//
//go:embed *.sql
var FS embed.FS
