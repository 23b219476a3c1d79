// Package migrations embeds the notifications service's SQL migrations.
package migrations

import "embed"

// FS holds the *.up.sql files, applied in name order by pg.Migrate.
//
//go:embed *.sql
var FS embed.FS
