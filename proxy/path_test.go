package proxy

import (
	"math/rand/v2"
	"net/url"
	"path"
	"strings"
	"testing"
)

// climbs is exact: a client path climbs out of the prefix if and only if
// one of its readings does, each read by path.Clean, which shares no code
// with it. A reading takes each %2F, %5C and "\\" for a separator or for
// part of a name, decodes the rest, and cuts each segment at a ";".
func TestClimbsAgreesWithClean(t *testing.T) {
	parts := []string{"a", "b", ".", "..", "", "%2e", "%2E%2e", ".%2e", "%2f", "%2F", "%5c", "\\", ";", "..;x", "%3b", "..a", "x;"}
	rng := rand.New(rand.NewPCG(17, 8))
	const prefix = "/p/q"
	climbing := 0
	for range 20000 {
		var b strings.Builder
		for range 1 + rng.IntN(6) {
			b.WriteString("/")
			for range 1 + rng.IntN(3) {
				b.WriteString(parts[rng.IntN(len(parts))])
			}
		}
		p := b.String()
		want, reading := false, ""
		for mask := range 1 << separators(p) {
			r := readAs(p, mask)
			if c := path.Clean(prefix + "/" + r); c != prefix && !strings.HasPrefix(c, prefix+"/") {
				want, reading = true, r
				break
			}
		}
		if got := climbs(p); got != want {
			t.Fatalf("climbs(%q) = %v; a reading that leaves the prefix: %q", p, got, reading)
		}
		if want {
			climbing++
		}
	}
	if climbing < 1000 {
		t.Errorf("only %d of the paths climb: the test tries too few", climbing)
	}
}

// separators counts the optional separators of p.
func separators(p string) int {
	return strings.Count(p, `\`) + strings.Count(strings.ToUpper(p), "%2F") + strings.Count(strings.ToUpper(p), "%5C")
}

// readAs is p read with the optional separators whose bits mask sets as
// separators, the others as a byte of a name (NUL, which no path holds),
// every segment decoded and cut at a ";".
func readAs(p string, mask int) string {
	var segs []string
	var cur strings.Builder
	end := func() {
		s := cur.String()
		if d, err := url.PathUnescape(s); err == nil {
			s = d
		}
		s, _, _ = strings.Cut(s, ";")
		segs = append(segs, s)
		cur.Reset()
	}
	bit := 0
	for i := 0; i < len(p); i++ {
		n := 0
		switch u := strings.ToUpper(p[i:min(i+3, len(p))]); {
		case p[i] == '/':
			end()
			continue
		case p[i] == '\\':
			n = 1
		case u == "%2F" || u == "%5C":
			n = 3
		}
		if n == 0 {
			cur.WriteByte(p[i])
			continue
		}
		if mask&(1<<bit) != 0 {
			end()
		} else {
			cur.WriteByte(0)
		}
		bit++
		i += n - 1
	}
	end()
	return strings.Join(segs, "/")
}
