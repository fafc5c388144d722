// Package odata is the OData v4 door onto a form's records (protocol.md §4),
// for Power BI's and Excel's "OData feed" connector: a service document, the
// CSDL $metadata derived from the form's published schemas, and the entity
// sets as JSON pages linked by @odata.nextLink.
//
// It follows ODK Central's OData feed where that makes sense, since Power BI
// users of ODK know it: the records are the entity set Submissions, keyed by
// __id, with their metadata in the complex property __system
// (submissionDate, reviewState, …); groups of questions are complex types;
// each repeat group (an array of objects) is an entity set of its own,
// "Submissions.household.members", whose rows carry their own __id and their
// parent's in "__Submissions-id" (nested: "__Submissions-household-members-id").
// Paging uses $skiptoken. Unlike Central, a geopoint is a complex value with
// latitude, longitude, altitude and accuracy as numbers, which Power BI's map
// visuals take as they are.
//
// The package reads records through Source, a small seam over the store
// (see Source); it holds no rule about who may read: the HTTP layer
// checks roles before it calls in.
package odata
