package console_test

// The designers' pages in the console's role table (roles_test.go), in a
// file of their own so the areas do not edit the same lines. Each row is the
// API row of the route the page mirrors (internal/httpapi/roles_test.go):
// reads as the member routes, actions as the designer routes (which let
// managers and admins in too).
var designerRoleRows = map[string][]string{
	"GET /projects/{project}/forms":                                    {roleAdmin, roleManager, roleDesigner, roleAnalyst, roleEnumerator},
	"GET /projects/{project}/forms/upload":                             {roleAdmin, roleManager, roleDesigner},
	"POST /projects/{project}/forms/upload":                            {roleAdmin, roleManager, roleDesigner},
	"GET /projects/{project}/forms/{form}/versions/{version}":          {roleAdmin, roleManager, roleDesigner, roleAnalyst, roleEnumerator},
	"POST /projects/{project}/forms/{form}/versions/{version}/publish": {roleAdmin, roleManager, roleDesigner},
	"POST /projects/{project}/forms/{form}/close":                      {roleAdmin, roleManager, roleDesigner},
	"POST /projects/{project}/forms/{form}/reopen":                     {roleAdmin, roleManager, roleDesigner},
	"GET /projects/{project}/forms/{form}/compare":                     {roleAdmin, roleManager, roleDesigner, roleAnalyst, roleEnumerator},
}

func init() {
	for k, v := range designerRoleRows {
		consoleRoleTable[k] = v
	}
}
