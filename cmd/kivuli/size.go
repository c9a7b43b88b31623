package main

import "github.com/kivuli-go/kivuli/internal/bytesize"

// sizeFlag is a byte count given as 5GiB, 100MB, 1M or 65536: the IEC
// units (KiB, MiB, GiB, TiB) and the bare letters (K, M, G, T, as nginx
// and curl read them) are powers of 1024, the SI units (KB, MB, GB, TB)
// powers of 1000.
type sizeFlag struct {
	n   int64
	raw string
}

func (s *sizeFlag) String() string { return s.raw }
func (s *sizeFlag) Type() string   { return "size" }

func (s *sizeFlag) Set(v string) error {
	n, err := bytesize.Parse(v)
	if err != nil {
		return err
	}
	s.n, s.raw = n, v
	return nil
}

// formatSize writes n in the largest binary unit that divides it.
func formatSize(n int64) string { return bytesize.Format(n) }
