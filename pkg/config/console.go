package config

import (
	"fmt"
	"net"
	"net/url"
	"strings"
)

// ConsoleURLKey names the web console's base URL: where Checkout returns members to and where
// every email links to.
const ConsoleURLKey = "TALLY_CONSOLE_URL"

// DefaultConsoleURL is the console served by the gateway on `make run`.
const DefaultConsoleURL = "http://localhost:8080"

// ConsoleURL reads TALLY_CONSOLE_URL (default DefaultConsoleURL), checked by ParseConsoleURL in
// the mode TALLY_ENV names, without its trailing slash. A bad value is recorded for Err and the
// default returned.
func (e *Env) ConsoleURL() string {
	raw := e.String(ConsoleURLKey, DefaultConsoleURL)
	u, err := ParseConsoleURL(raw, e.Development())
	if err != nil {
		e.Invalid(fmt.Errorf("%s: %w", ConsoleURLKey, err))
		return DefaultConsoleURL
	}
	return u
}

// ParseConsoleURL checks a console base URL and returns it without its trailing slash: an absolute
// http or https URL with a host and neither query, fragment nor user info. Outside development it
// must be https unless its host is a loopback name or address (a console on the same machine).
func ParseConsoleURL(raw string, development bool) (string, error) {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return "", fmt.Errorf("%q is not a URL: %w", raw, err)
	case u.Scheme != "http" && u.Scheme != "https":
		return "", fmt.Errorf("%q is not an absolute http(s) URL", raw)
	case u.Host == "" || u.Hostname() == "":
		return "", fmt.Errorf("%q has no host", raw)
	case u.User != nil:
		return "", fmt.Errorf("%q must not carry user info", raw)
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return "", fmt.Errorf("%q must not have a query or fragment", raw)
	case u.Scheme == "http" && !development && !loopback(u.Hostname()):
		return "", fmt.Errorf("%q must use https outside development (TALLY_ENV=development), unless on localhost", raw)
	}
	return strings.TrimRight(u.String(), "/"), nil
}

func loopback(host string) bool {
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
