package console

import "net/http"

// registerManagerRoutes registers the managers' pages (manager_*.go):
// projects, members, devices and enrolment, users, the audit log. Each
// mirrors the API route that does the same, and calls the same identity
// service method, so the checks and audit events are the API's.
func (c *Console) registerManagerRoutes() {
	// Projects (manager_projects.go): admins create them, from the home page.
	c.handle(http.MethodPost, "/projects", "POST /v1/projects", c.createProject)

	// Members and roles (manager_members.go).
	c.handle(http.MethodGet, "/projects/{project}/members", "GET /v1/projects/{project}/members", c.membersPage)
	c.handle(http.MethodPost, "/projects/{project}/members", "PUT /v1/projects/{project}/members/{username}", c.setMember)
	c.handle(http.MethodPost, "/projects/{project}/members/{username}/remove", "DELETE /v1/projects/{project}/members/{username}", c.removeMember)
	c.addNav(NavItem{Label: "nav.members", Path: "/projects/{project}/members", Mirror: "GET /v1/projects/{project}/members"})

	// Devices, enrolment and revocation (manager_devices.go).
	c.handle(http.MethodGet, "/projects/{project}/devices", "GET /v1/projects/{project}/devices", c.devicesPage)
	c.handle(http.MethodPost, "/projects/{project}/devices", "POST /v1/projects/{project}/devices", c.createDevice)
	// The confirmation page shows one device, a read of the device list.
	c.handle(http.MethodGet, "/projects/{project}/devices/{device_id}/revoke", "GET /v1/projects/{project}/devices", c.revokeDevicePage)
	c.handle(http.MethodPost, "/projects/{project}/devices/{device_id}/revoke", "DELETE /v1/projects/{project}/devices/{device_id}", c.revokeDevice)
	// A fresh ODK Collect key for a device, shown as Collect's settings QR code.
	c.handle(http.MethodPost, "/projects/{project}/devices/{device_id}/collect", "POST /v1/projects/{project}/devices/{device_id}/openrosa-key", c.collectKey)
	c.addNav(NavItem{Label: "nav.devices", Path: "/projects/{project}/devices", Mirror: "GET /v1/projects/{project}/devices"})

	// Users (manager_users.go): admins.
	c.handle(http.MethodGet, "/users", "GET /v1/users", c.usersPage)
	c.handle(http.MethodPost, "/users", "POST /v1/users", c.createUser)
	c.handle(http.MethodPost, "/users/{username}", "PATCH /v1/users/{username}", c.updateUser)
	c.handle(http.MethodPost, "/users/{username}/password", "POST /v1/users/{username}/password", c.resetPassword)
	c.handle(http.MethodPost, "/users/{username}/revoke", "POST /v1/users/{username}/revoke", c.revokeUser)
	c.handle(http.MethodPost, "/users/{username}/disable", "POST /v1/users/{username}/disable", c.setUserDisabled(true))
	c.handle(http.MethodPost, "/users/{username}/enable", "POST /v1/users/{username}/enable", c.setUserDisabled(false))
	c.addNav(NavItem{Label: "nav.users", Path: "/users", Mirror: "GET /v1/users"})

	// The audit log (manager_audit.go): admins, as GET /v1/audit.
	c.handle(http.MethodGet, "/audit", "GET /v1/audit", c.auditPage)
	c.addNav(NavItem{Label: "nav.audit", Path: "/audit", Mirror: "GET /v1/audit"})
}
