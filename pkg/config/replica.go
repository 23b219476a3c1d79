package config

import (
	"crypto/rand"
	"encoding/hex"
	"os"
)

// ReplicaName names one replica of service: its host name (service when the host has none) and
// a random suffix, so two processes on one host differ.
func ReplicaName(service string) string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = service
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return host + "-" + hex.EncodeToString(b)
}
