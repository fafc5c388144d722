package console

// registerManagerRoutes registers the managers' pages (manager_*.go):
// projects, members, devices and enrolment, users, the audit log.
func (c *Console) registerManagerRoutes() {
}
