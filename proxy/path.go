package proxy

import (
	"iter"
	"math"
	"net/url"
	"strings"
)

// An Upstream with a path (https://aps-workspaces.../workspaces/ws-1)
// confines the client to that prefix: ReverseProxy joins the client's path
// to it, and a reader that removes dot segments (the signer for every
// service but S3, the service itself, any proxy or tunnel on the way)
// would take /workspaces/ws-1/../ws-2 to /workspaces/ws-2. A client path
// that climbs above its root in any such reading is refused with 400
// before anything is sent.
//
// Readers differ in what they take for a separator and a dot segment, so
// the check takes every reading: "/" separates segments; %2F, %5C and ""
// may separate them or be part of a name; a segment is "." or ".." once
// decoded (%2E) and cut at a ";parameter" (servlet containers read "..;"
// as ".."); empty segments (repeated slashes) are dropped, as the signer
// drops them. Without a prefix there is nothing to escape, and dot
// segments keep their meaning (S3 keys).

// climbs reports whether the escaped path p, read as relative to a
// prefix, leaves it in some reading described above. The least depth a
// reading can reach at each point is all that matters (a lower depth
// only climbs sooner), so it follows that alone.
func climbs(p string) bool {
	depth := 0
	for seg := range strings.SplitSeq(p, "/") {
		var ok bool
		if depth, ok = segmentDepth(seg, depth); !ok {
			return true
		}
	}
	return false
}

// segmentDepth is the least depth a segment (between two "/") leads to from
// depth, in any reading of its optional separators, and false if a
// reading climbs above the root on the way. The segment's pieces are read
// in chunks: one piece alone, or a piece and those after it joined by
// separators read as part of a name, which is a name, unless the first
// piece has a ";parameter", which cuts the rest away.
func segmentDepth(seg string, depth int) (int, bool) {
	f := depth             // the least depth after the pieces so far
	longer := math.MaxInt  // after a chunk of two or more pieces ending at this one
	started := math.MaxInt // after a chunk from the last piece, once it takes this one
	for piece := range splitOptionalSeparators(seg) {
		v, cut := dotValue(piece)
		longer = min(longer, started)
		next := min(f+v, longer)
		if next < 0 {
			return 0, false
		}
		if cut {
			started = f + v
		} else {
			started = f + 1
		}
		f = next
	}
	return f, true
}

// splitOptionalSeparators yields the pieces of seg between %2F, %5C (in
// either case) and "\".
func splitOptionalSeparators(seg string) iter.Seq[string] {
	return func(yield func(string) bool) {
		for {
			i, n := optionalSeparator(seg)
			if i < 0 {
				yield(seg)
				return
			}
			if !yield(seg[:i]) {
				return
			}
			seg = seg[i+n:]
		}
	}
}

// optionalSeparator is the index and length of the first %2F, %5C or "\"
// in s, or -1.
func optionalSeparator(s string) (int, int) {
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '\\':
			return i, 1
		case s[i] == '%' && i+2 < len(s) && (s[i+1] == '2' && (s[i+2] == 'f' || s[i+2] == 'F') ||
			s[i+1] == '5' && (s[i+2] == 'c' || s[i+2] == 'C')):
			return i, 3
		}
	}
	return -1, 0
}

// dotValue is a piece's step, decoded and cut at a ";parameter": -1 for
// "..", 0 for "" or ".", 1 for a name; and whether it had a parameter.
func dotValue(piece string) (step int, cut bool) {
	if d, err := url.PathUnescape(piece); err == nil {
		piece = d
	}
	piece, _, cut = strings.Cut(piece, ";")
	switch piece {
	case "", ".":
		return 0, cut
	case "..":
		return -1, cut
	}
	return 1, cut
}

// hasPrefix reports whether the upstream has a path the client must stay
// under.
func hasPrefix(upstream *url.URL) bool {
	return strings.Trim(upstream.EscapedPath(), "/") != ""
}

// dotSegments reports whether the escaped path p has a segment that is,
// or decodes to, "." or ".." in some reading: an Upstream's path must
// not, so that the prefix a client is held under is the one written.
func dotSegments(p string) bool {
	for seg := range strings.SplitSeq(p, "/") {
		for piece := range splitOptionalSeparators(seg) {
			if v, _ := dotValue(piece); piece != "" && v <= 0 {
				return true
			}
		}
	}
	return false
}
