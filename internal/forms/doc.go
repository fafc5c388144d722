// Package forms reads, checks and compiles form definitions (protocol.md §2) and
// validates records' data against them. It holds no store access: a service
// that stores versions builds on ParseDefinition and Cache.
//
// The life of a definition:
//
//   - ParseDefinition takes the uploaded bytes, enforces MaxDefinitionSize and
//     MaxDepth, checks them against the embedded meta-schema
//     (schemas/form-definition.schema.json, which also checks "schema" against
//     the draft 2020-12 meta-schema) reporting every finding at once, and
//     compiles "schema" with jsonschema v6: draft 2020-12, formats asserted
//     (date, date-time, time, email, uuid… and geopoint), unknown formats
//     refused, and no loading of anything: a $ref must point inside the
//     document.
//   - The result carries Source (the bytes as given, whitespace removed, key
//     order kept), Canonical (RFC 8785) and Hash (sha256 of Canonical). Store
//     Source: the exports list answers in the designer's key order, which
//     canonical JSON sorts away. Cache.Get accepts either and checks the hash.
//   - Cache keeps compiled definitions by hash for the whole process, so a
//     pushed record is validated (ValidateJSON) without recompiling anything.
//
// The definition may carry "title", "description", "conflict_policy", "shared",
// "ui" and "schema", nothing else. "description" is allowed because designers
// keep notes about the purpose of a form with it and collector apps show them;
// it has no effect on the server.
package forms
