// Package config reads service settings from environment variables, collecting every problem
// so that a misconfigured service reports all of them at once.
package config

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// Env reads typed values from an environment lookup function.
type Env struct {
	lookup func(string) (string, bool)
	errs   []error
}

// FromOS reads the process environment.
func FromOS() *Env { return New(os.LookupEnv) }

// New reads from lookup, which has the signature of os.LookupEnv.
func New(lookup func(string) (string, bool)) *Env { return &Env{lookup: lookup} }

// FromMap reads from a map; handy in tests.
func FromMap(m map[string]string) *Env {
	return New(func(k string) (string, bool) { v, ok := m[k]; return v, ok })
}

func (e *Env) get(key string) (string, bool) {
	v, ok := e.lookup(key)
	v = strings.TrimSpace(v)
	return v, ok && v != ""
}

// String returns the value of key or def.
func (e *Env) String(key, def string) string {
	if v, ok := e.get(key); ok {
		return v
	}
	return def
}

// Required returns the value of key and records an error when it is missing.
func (e *Env) Required(key string) string {
	v, ok := e.get(key)
	if !ok {
		e.errs = append(e.errs, fmt.Errorf("%s is required", key))
	}
	return v
}

// Int returns the integer value of key or def.
func (e *Env) Int(key string, def int) int {
	v, ok := e.get(key)
	if !ok {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		e.errs = append(e.errs, fmt.Errorf("%s: %q is not an integer", key, v))
		return def
	}
	return n
}

// Int64 returns the 64-bit integer value of key or def.
func (e *Env) Int64(key string, def int64) int64 {
	v, ok := e.get(key)
	if !ok {
		return def
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		e.errs = append(e.errs, fmt.Errorf("%s: %q is not an integer", key, v))
		return def
	}
	return n
}

// Bool returns the boolean value of key or def.
func (e *Env) Bool(key string, def bool) bool {
	v, ok := e.get(key)
	if !ok {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		e.errs = append(e.errs, fmt.Errorf("%s: %q is not a boolean", key, v))
		return def
	}
	return b
}

// Duration returns the duration value of key (Go syntax, e.g. "1h30m") or def.
func (e *Env) Duration(key string, def time.Duration) time.Duration {
	v, ok := e.get(key)
	if !ok {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		e.errs = append(e.errs, fmt.Errorf("%s: %q is not a duration", key, v))
		return def
	}
	return d
}

// Period returns a calendar-aware period of key: "3mo" (calendar months), "14d" (days) or any Go
// duration such as "90s".
func (e *Env) Period(key string, def Period) Period {
	v, ok := e.get(key)
	if !ok {
		return def
	}
	p, err := ParsePeriod(v)
	if err != nil {
		e.errs = append(e.errs, fmt.Errorf("%s: %w", key, err))
		return def
	}
	return p
}

// Invalid records a problem found in the values read, reported by Err with the others.
func (e *Env) Invalid(err error) {
	if err != nil {
		e.errs = append(e.errs, err)
	}
}

// Err returns every problem met so far, joined, or nil.
func (e *Env) Err() error { return errors.Join(e.errs...) }

// Period is a length of time that may count calendar months.
type Period struct {
	Months   int
	Duration time.Duration
}

// ParsePeriod parses "3mo", "14d" or a Go duration.
func ParsePeriod(s string) (Period, error) {
	switch {
	case strings.HasSuffix(s, "mo"):
		n, err := strconv.Atoi(strings.TrimSuffix(s, "mo"))
		if err != nil || n <= 0 {
			return Period{}, fmt.Errorf("%q is not a positive number of months", s)
		}
		return Period{Months: n}, nil
	case strings.HasSuffix(s, "d"):
		n, err := strconv.Atoi(strings.TrimSuffix(s, "d"))
		if err != nil || n <= 0 {
			return Period{}, fmt.Errorf("%q is not a positive number of days", s)
		}
		return Period{Duration: time.Duration(n) * 24 * time.Hour}, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return Period{}, fmt.Errorf("%q is not a period (use 3mo, 14d or a duration like 90s)", s)
	}
	return Period{Duration: d}, nil
}

// AddTo returns t plus the period, counting calendar months in UTC.
func (p Period) AddTo(t time.Time) time.Time {
	return t.UTC().AddDate(0, p.Months, 0).Add(p.Duration)
}

// String formats the period as ParsePeriod reads it.
func (p Period) String() string {
	if p.Months > 0 && p.Duration == 0 {
		return fmt.Sprintf("%dmo", p.Months)
	}
	return p.Duration.String()
}
