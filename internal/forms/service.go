package forms

// Service publishes form definitions: drafts, publish, close, lists.
type Service struct{}
