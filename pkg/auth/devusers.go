package auth

// DevUser is one of the development identities: the users of `make run` (tally-dev prints
// their tokens, the gateway's development sign-in page lists them, tally-oidc-dev signs them in).
type DevUser struct {
	// Key names the user in forms and flags: "ada", "grace", "ops", "backend".
	Key string
	// Label says who the user is, for people choosing one.
	Label string
	// Claims is the identity a token of the user carries.
	Claims Claims
}

// DevUsers returns the development identities: a member and an admin of the organization acme,
// platform operations, and a model backend (a service). Each call returns a fresh copy.
func DevUsers() []DevUser {
	return []DevUser{
		{Key: "ada", Label: "member of acme", Claims: Claims{Subject: "user-ada", OrgID: "acme", Email: "ada@acme.test", Name: "Ada Lovelace", Roles: []Role{RoleMember}}},
		{Key: "grace", Label: "admin of acme", Claims: Claims{Subject: "user-grace", OrgID: "acme", Email: "grace@acme.test", Name: "Grace Hopper", Roles: []Role{RoleAdmin}}},
		{Key: "ops", Label: "ops", Claims: Claims{Subject: "ops-dev", Email: "ops@tally.test", Name: "Ops", Roles: []Role{RoleOps}}},
		{Key: "backend", Label: "model backend", Claims: Claims{Subject: "backend-dev", Roles: []Role{RoleService}}},
	}
}

// DevPeople returns the development users a person can sign in as (every DevUsers entry but the
// model backend).
func DevPeople() []DevUser {
	var out []DevUser
	for _, u := range DevUsers() {
		if !u.Claims.Has(RoleService) {
			out = append(out, u)
		}
	}
	return out
}

// DevUserByKey returns the development person named key ("ada", "grace", "ops").
func DevUserByKey(key string) (DevUser, bool) {
	for _, u := range DevPeople() {
		if u.Key == key {
			return u, true
		}
	}
	return DevUser{}, false
}
