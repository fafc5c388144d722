package console_test

// The managers' pages in the console's role table (roles_test.go), kept in
// a file of their own so the areas do not edit the same lines. Each row is
// the API row of the route the page mirrors (internal/httpapi/roles_test.go).
var managerRoleRows = map[string][]string{
	// Admins create projects, as POST /v1/projects.
	"POST /projects": {roleAdmin},
	// Members, roles and devices: the project's managers (and admins).
	"GET /projects/{project}/members":                      {roleAdmin, roleManager},
	"POST /projects/{project}/members":                     {roleAdmin, roleManager},
	"POST /projects/{project}/members/{username}/remove":   {roleAdmin, roleManager},
	"GET /projects/{project}/devices":                      {roleAdmin, roleManager},
	"POST /projects/{project}/devices":                     {roleAdmin, roleManager},
	"GET /projects/{project}/devices/{device_id}/revoke":   {roleAdmin, roleManager},
	"POST /projects/{project}/devices/{device_id}/revoke":  {roleAdmin, roleManager},
	"POST /projects/{project}/devices/{device_id}/collect": {roleAdmin, roleManager},
	// Users and the audit log: admins only, as /v1/users and /v1/audit.
	"GET /users":                      {roleAdmin},
	"POST /users":                     {roleAdmin},
	"POST /users/{username}":          {roleAdmin},
	"POST /users/{username}/password": {roleAdmin},
	"POST /users/{username}/revoke":   {roleAdmin},
	"POST /users/{username}/disable":  {roleAdmin},
	"POST /users/{username}/enable":   {roleAdmin},
	"GET /audit":                      {roleAdmin},
}

func init() {
	for k, v := range managerRoleRows {
		consoleRoleTable[k] = v
	}
}
