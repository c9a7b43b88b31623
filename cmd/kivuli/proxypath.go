package main

import (
	"iter"
	"net/url"
	"strings"
)

// An --upstream with a path (https://aps-workspaces.../workspaces/ws-1)
// confines the client to that prefix: ReverseProxy joins the client's path
// to it, and a reader that removes dot segments (the signer for every
// service but S3, the service itself, any proxy or tunnel on the way)
// would take /workspaces/ws-1/../ws-2 to /workspaces/ws-2. A client path
// that climbs above its root in any such reading is refused with 400
// before anything is sent.
//
// Readers differ in what they take for a separator and a dot segment, so
// the check takes the reading that climbs most: a segment is "." or ".."
// literally or percent-encoded (%2E), with or without a ";parameter"
// (servlet containers read "..;" as ".."); "/", "\" and their encodings
// (%2F, %5C) may all separate segments; empty segments (repeated
// slashes) are dropped, as the signer drops them. Without a prefix there
// is nothing to escape, and dot segments keep their meaning (S3 keys).

// climbs reports whether the escaped path p, read as relative to a
// prefix, leaves it in the reading described above.
func climbs(p string) bool {
	depth := 0
	named := false // the previous piece was a name joined by an encoded separator
	for seg := range strings.SplitSeq(strings.ReplaceAll(p, `\`, "/"), "/") {
		named = false
		for piece := range splitEncodedSeparators(seg) {
			switch dotValue(piece) {
			case 0: // "" or ".": no step, and no break between names
			case -1:
				if depth == 0 {
					return true
				}
				depth--
				named = false
			default:
				// Names joined by an encoded separator count once: the
				// reading that keeps them one segment climbs further.
				if !named {
					depth++
				}
				named = true
			}
		}
	}
	return false
}

// splitEncodedSeparators yields the pieces of seg between %2F and %5C (in
// either case).
func splitEncodedSeparators(seg string) iter.Seq[string] {
	return func(yield func(string) bool) {
		for {
			i := encodedSeparator(seg)
			if i < 0 {
				yield(seg)
				return
			}
			if !yield(seg[:i]) {
				return
			}
			seg = seg[i+3:]
		}
	}
}

// encodedSeparator is the index of the first %2F or %5C in s, or -1.
func encodedSeparator(s string) int {
	for i := 0; i+2 < len(s); i++ {
		if s[i] == '%' && s[i+1] == '2' && (s[i+2] == 'f' || s[i+2] == 'F') ||
			s[i] == '%' && s[i+1] == '5' && (s[i+2] == 'c' || s[i+2] == 'C') {
			return i
		}
	}
	return -1
}

// dotValue is a piece's step: -1 for "..", 0 for "" or ".", 1 for a name;
// decoded, and without a ";parameter".
func dotValue(piece string) int {
	if d, err := url.PathUnescape(piece); err == nil {
		piece = d
	}
	piece, _, _ = strings.Cut(piece, ";")
	switch piece {
	case "", ".":
		return 0
	case "..":
		return -1
	}
	return 1
}

// hasPrefix reports whether the upstream has a path the client must stay
// under.
func hasPrefix(upstream *url.URL) bool {
	return strings.Trim(upstream.EscapedPath(), "/") != ""
}

// dotSegments reports whether the escaped path p has a segment that is,
// or decodes to, "." or "..": an --upstream's path must not, so that the
// prefix a client is held to is the one written.
func dotSegments(p string) bool {
	for seg := range strings.SplitSeq(strings.ReplaceAll(p, `\`, "/"), "/") {
		for piece := range splitEncodedSeparators(seg) {
			if piece != "" && dotValue(piece) <= 0 {
				return true
			}
		}
	}
	return false
}
