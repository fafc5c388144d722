package console_test

// The language selector (language.go) in the console's role table
// (roles_test.go): public, as sign-out, since the sign-in page offers it.
func init() {
	consoleRoleTable["POST /language"] = allCallers
}
