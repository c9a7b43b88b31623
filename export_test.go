package kivuli

// WithoutBackground turns off the refresh ahead of the deadline, so that a
// test can reach the deadline with the credentials still in place.
func WithoutBackground() Option { return func(c *config) { c.noBackground = true } }
