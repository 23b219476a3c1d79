package config

import "fmt"

// Mode is how a service runs: production (the default, nothing granted by default) or
// development (built-in secrets, the test-mode checkout and other local conveniences).
type Mode string

// The modes TALLY_ENV may name.
const (
	Production  Mode = "production"
	Development Mode = "development"
)

// ModeKey is the one switch between production and development defaults.
const ModeKey = "TALLY_ENV"

// Mode reads TALLY_ENV: unset or "production" is Production, "development" is Development;
// anything else is a configuration error (and Production).
func (e *Env) Mode() Mode {
	v, ok := e.get(ModeKey)
	if !ok {
		return Production
	}
	switch Mode(v) {
	case Production, Development:
		return Mode(v)
	}
	e.errs = append(e.errs, fmt.Errorf("%s: %q is neither %q nor %q", ModeKey, v, Production, Development))
	return Production
}

// Development reports whether TALLY_ENV=development asks for development conveniences.
func (e *Env) Development() bool { return e.Mode() == Development }
