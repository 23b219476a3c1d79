// Package migrations embeds the payments schema migrations, applied by pg.Migrate at start-up.
package migrations

import "embed"

// FS holds the *.up.sql migrations.
//
//go:embed *.sql
var FS embed.FS
