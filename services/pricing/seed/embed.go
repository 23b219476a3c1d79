// Package seed embeds the catalog the pricing service loads when its catalog is empty.
package seed

import _ "embed"

// Catalog is catalog.yaml: realistic model and instance prices, effective from the Unix epoch.
//
//go:embed catalog.yaml
var Catalog []byte
