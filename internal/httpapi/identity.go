package httpapi

// registerIdentityRoutes adds the routes of protocol.md §1 and the project routes.
func (s *Server) registerIdentityRoutes() {
	if s.identity == nil {
		return
	}
}
