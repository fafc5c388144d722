package console

// registerAnalystRoutes registers the analysts' pages (analyst_*.go):
// submissions, records, conflicts, review, quarantine, exports, map.
func (c *Console) registerAnalystRoutes() {
}
