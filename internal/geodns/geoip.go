package geodns

import (
	"fmt"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"

	"github.com/oschwald/maxminddb-golang/v2"
)

// GeoIP places an address in a country and continent.
type GeoIP interface {
	// Lookup returns where addr is. A zero Location with a nil error means
	// the database does not know addr.
	Lookup(addr netip.Addr) (Location, error)
}

// Location is what a GeoIP database says about an address.
type Location struct {
	// Country is the ISO 3166-1 alpha-2 code, "" if unknown.
	Country string
	// Continent is the two-letter continent code, "" if unknown.
	Continent string
	// Network is the database network that holds the address and shares
	// this location; invalid when the address is not in the database.
	Network netip.Prefix
}

var _ GeoIP = (*MMDB)(nil)

// MMDB is a GeoIP read from a MaxMind DB file (GeoIP2 or GeoLite2 Country
// or City, or a file of the same layout). The file is read into memory, so
// nothing needs closing and the file may be replaced on disk.
type MMDB struct {
	reader *maxminddb.Reader

	// cache maps a record's offset in the data section to its decoded
	// fields: a country database has a few hundred distinct records, so
	// after warm-up a lookup is a tree walk and a map read.
	cache atomic.Pointer[map[uintptr]geoFields]
	// mu serialises writers of cache (copy on write).
	mu sync.Mutex
}

type geoFields struct {
	country, continent string
}

// mmdbCacheSize bounds the decoded-record cache; a city database has more
// records, the rest are decoded on each lookup.
const mmdbCacheSize = 8192

// mmdbRecord is the part of a GeoIP2 country or city record that matters.
type mmdbRecord struct {
	Country struct {
		ISOCode string `maxminddb:"iso_code"`
	} `maxminddb:"country"`
	RegisteredCountry struct {
		ISOCode string `maxminddb:"iso_code"`
	} `maxminddb:"registered_country"`
	Continent struct {
		Code string `maxminddb:"code"`
	} `maxminddb:"continent"`
}

// OpenMMDB reads a MaxMind DB file.
func OpenMMDB(path string) (*MMDB, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("geodns: open geoip: %w", err)
	}
	r, err := maxminddb.OpenBytes(b)
	if err != nil {
		return nil, fmt.Errorf("geodns: open geoip %s: %w", path, err)
	}
	m := &MMDB{reader: r}
	empty := map[uintptr]geoFields{}
	m.cache.Store(&empty)
	return m, nil
}

// Lookup implements GeoIP. An address the database lacks gives a zero
// Location; a record without a country falls back to the registered
// country (e.g. satellite providers).
func (m *MMDB) Lookup(addr netip.Addr) (Location, error) {
	res := m.reader.Lookup(addr)
	if err := res.Err(); err != nil {
		return Location{}, fmt.Errorf("geodns: geoip lookup %s: %w", addr, err)
	}
	if !res.Found() {
		return Location{}, nil
	}
	off := res.Offset()
	f, ok := (*m.cache.Load())[off]
	if !ok {
		var rec mmdbRecord
		if err := res.Decode(&rec); err != nil {
			return Location{}, fmt.Errorf("geodns: geoip decode %s: %w", addr, err)
		}
		f = geoFields{country: rec.Country.ISOCode, continent: rec.Continent.Code}
		if f.country == "" {
			f.country = rec.RegisteredCountry.ISOCode
		}
		m.remember(off, f)
	}
	return Location{Country: f.country, Continent: f.continent, Network: res.Prefix()}, nil
}

func (m *MMDB) remember(off uintptr, f geoFields) {
	m.mu.Lock()
	defer m.mu.Unlock()
	old := *m.cache.Load()
	if _, ok := old[off]; ok || len(old) >= mmdbCacheSize {
		return
	}
	next := make(map[uintptr]geoFields, len(old)+1)
	for k, v := range old {
		next[k] = v
	}
	next[off] = f
	m.cache.Store(&next)
}
