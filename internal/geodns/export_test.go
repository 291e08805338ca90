package geodns

// Test seams: New takes these options only from the tests.

// WithProber replaces the HTTP health prober.
func WithProber(p Prober) Option { return func(o *options) { o.prober = p } }

// WithClock replaces the real clock (health ticks, time-based serial).
func WithClock(c Clock) Option { return func(o *options) { o.clock = c } }

// WithGeoIP replaces the database of Config.GeoIPPath.
func WithGeoIP(g GeoIP) Option { return func(o *options) { o.geo = g } }
