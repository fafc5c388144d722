package httpapi

// registerFormRoutes adds the form-definition routes of protocol.md §2.
func (s *Server) registerFormRoutes() {
	if s.forms == nil {
		return
	}
}
