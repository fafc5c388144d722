package main

// acmeCacheDir is the directory, in the data directory, where the ACME client
// keeps its account key and certificates (FIELDSYNC_ACME_DOMAIN).
const acmeCacheDir = "acme"
