// Package geodns is an authoritative DNS server for one zone that answers
// its geo names (by default the apex and www) with the A/AAAA records of
// the edges of the client's nearest healthy region.
//
// # Answers
//
// The server has authority (AA=1) for the zone and nothing else: a name
// outside it gets REFUSED (no recursion, RA=0). An unknown name gets
// NXDOMAIN and an existing name without the asked type NODATA (NOERROR, no
// answer), both with the SOA in the authority section, its TTL capped by
// the SOA minimum (RFC 2308). Empty non-terminals exist (RFC 8020). A CNAME
// is chased inside the zone. Other opcodes than QUERY get NOTIMP, zone
// transfers REFUSED, a message without exactly one question FORMERR.
// Responses are never answered.
//
// ANY (RFC 8482): a name with data gets one synthesised HINFO record
// ("RFC8482", ""), over UDP and TCP alike; it is small, never truncated and
// not an amplifier. Clients that want addresses ask for A or AAAA. Wildcards
// and delegations are not supported.
//
// # EDNS
//
// A query with OPT gets OPT back, advertising 1232 bytes and echoing DO;
// EDNS version > 0 gets BADVERS; several OPT records, or one not owned by
// the root, FORMERR. Over UDP an answer larger than the client's buffer
// (512 bytes without EDNS, else its size capped at 1232) is compressed, and
// if still too large sent with TC=1 and empty sections, so that the client
// retries over TCP, where the full answer fits.
//
// # Placing clients
//
// The client is the EDNS Client Subnet address (RFC 7871) when the query
// has one with a source prefix > 0, else the query's source address. The
// most specific CIDR rule of a region wins, then the GeoIP country, then
// the GeoIP continent, else the default region.
//
// The ECS option is echoed with SCOPE PREFIX-LENGTH set to the prefix
// length of the network the decision holds for — the GeoIP network (or
// CIDR rule) that matched — capped at the source prefix length; the source
// prefix itself when nothing matched or when a more specific CIDR rule
// overlaps that network. Answers that do not depend on the client (static
// records, NXDOMAIN, NODATA outside the geo names) echo scope 0, as does a
// query with source prefix 0. A malformed option (unknown family, prefix too long for
// the family, address bits set beyond the prefix, two ECS options) gets
// FORMERR (RFC 7871 §7.1); the DNS library pads or cuts the address to the
// family's length, so a wrong address length is not detected.
//
// # Health and fallback
//
// Edges with a health address are probed over HTTP every interval (a
// Prober, injectable); rise good results in a row make an edge healthy,
// fall failures unhealthy. Edges start healthy. A region is healthy while
// one of its edges is (Health). Answers are worked out per address family:
// a client gets the healthy edges of its own region, else of the first
// region of its fallback list with a healthy edge of that family, else of
// the default region, else all healthy edges of the family together,
// else — nothing healthy — all edges of the family (fail open, like Route
// 53 when all records are unhealthy). So a region whose IPv4 edges are all
// down answers A from its fallback while still answering AAAA itself; a
// region with no edge of a family at all answers NODATA for it. The
// answers per region are rebuilt on each health change and swapped in
// atomically; the query path only reads them.
//
// # Weights
//
// A geo answer holds all healthy addresses of the serving region in a
// weighted random order drawn per query (each position takes a remaining
// address with probability proportional to its weight), so clients that
// use the first address spread by weight. With AnswerCount N > 0 only the
// first N of that order are sent.
package geodns
