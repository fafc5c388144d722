package console

// registerDesignerRoutes registers the designers' pages (designer_*.go):
// form upload, validation findings, preview, publish, close, compare.
func (c *Console) registerDesignerRoutes() {
}
