package expr

// LiteralAt exposes literalAt to the external tests.
var LiteralAt = literalAt
