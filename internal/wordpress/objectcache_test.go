package wordpress

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// The object-cache drop-in, run by the real PHP CLI against a real redis.
// The PHP side of each case is in testdata/php/objectcache.php; every php
// process is one "request".

// ocHarness runs testdata/php/objectcache.php cases for one test.
type ocHarness struct {
	t        *testing.T
	dropin   string
	redis    *redisServer
	stateDir string
	prefix   string
	canary   string // SP_Canary's magic methods write this file: it must never exist
}

func newOCHarness(t *testing.T, redis *redisServer) *ocHarness {
	t.Helper()
	dir := t.TempDir()
	dropin := filepath.Join(dir, "object-cache.php")
	if err := os.WriteFile(dropin, objectCachePHP, 0o644); err != nil {
		t.Fatal(err)
	}
	h := &ocHarness{t: t, dropin: dropin, redis: redis, stateDir: t.TempDir(), prefix: "t" + strconv.FormatInt(time.Now().UnixNano(), 36),
		canary: filepath.Join(t.TempDir(), "canary")}
	t.Cleanup(func() {
		// After the php processes ended, so __destruct at shutdown counts too.
		if b, err := os.ReadFile(h.canary); err == nil {
			t.Errorf("a forged object was unserialised: its magic methods ran:\n%s", b)
		}
	})
	return h
}

// testSigningKey is SCALEPRESS_OBJECT_CACHE_KEY in testdata/php/objectcache.php.
const testSigningKey = "test-signing-key-0123456789abcdef0123456789abcdef"

// signed is what the drop-in stores for payload under redis key rkey.
func signed(rkey, payload string) string {
	m := hmac.New(sha256.New, []byte(testSigningKey))
	binary.Write(m, binary.BigEndian, uint32(len(rkey)))
	m.Write([]byte(rkey))
	m.Write([]byte(payload))
	return string(m.Sum(nil)) + payload
}

// run runs a case with redis on port (0: the harness's redis) and extra env.
func (h *ocHarness) run(t *testing.T, name string, port int, env ...string) phpResult {
	t.Helper()
	if port == 0 {
		port = h.redis.port
	}
	script, _ := filepath.Abs(filepath.Join("testdata", "php", "objectcache.php"))
	env = append([]string{
		"SP_DROPIN=" + h.dropin,
		"SP_REDIS_PORT=" + strconv.Itoa(port),
		"SP_PREFIX=" + h.prefix,
		"SP_STATE_DIR=" + h.stateDir,
		"SP_CANARY=" + h.canary,
	}, env...)
	if h.redis != nil && h.redis.password != "" {
		env = append([]string{"SP_REDIS_PASSWORD=" + h.redis.password}, env...)
	}
	return runPHP(t, env, script, name)
}

// mustRun runs a case that must pass and print nothing on stderr unless
// allowStderr matches it.
func (h *ocHarness) mustRun(t *testing.T, name string, port int, allowStderr *regexp.Regexp, env ...string) phpResult {
	t.Helper()
	res := h.run(t, name, port, env...)
	lines := res.lines()
	if res.code != 0 || lines[len(lines)-1] != "ok" {
		t.Fatalf("case %s failed:\n%s", name, res)
	}
	if res.stderr != "" && (allowStderr == nil || !allowStderr.MatchString(res.stderr)) {
		t.Fatalf("case %s wrote to stderr:\n%s", name, res)
	}
	return res
}

// stats decodes the JSON line a step_* case prints before "ok".
func stepStats(t *testing.T, res phpResult) map[string]any {
	t.Helper()
	lines := res.lines()
	if len(lines) < 2 {
		t.Fatalf("no stats in:\n%s", res)
	}
	var s map[string]any
	if err := json.Unmarshal([]byte(lines[len(lines)-2]), &s); err != nil {
		t.Fatalf("stats: %v in:\n%s", err, res)
	}
	return s
}

func (h *ocHarness) stateFile() string {
	m, _ := filepath.Glob(filepath.Join(h.stateDir, "scalepress-object-cache-*"))
	if len(m) == 0 {
		return ""
	}
	return m[0]
}

// TestObjectCacheAPI runs every case of the harness: the API's semantics, each
// case in its own php process with its own key prefix.
func TestObjectCacheAPI(t *testing.T) {
	redis := startRedis(t)
	script := filepath.Join("testdata", "php", "objectcache.php")
	list := runPHP(t, []string{"SP_DROPIN=" + filepath.Join("php", "object-cache.php")}, script, "--list")
	if list.code != 0 {
		t.Fatalf("--list: %s", list)
	}
	cases := list.lines()
	if len(cases) < 15 {
		t.Fatalf("only %d cases: %v", len(cases), cases)
	}
	for _, name := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			h := newOCHarness(t, redis)
			h.prefix += "-" + name
			var env []string
			if strings.HasPrefix(name, "multisite_") {
				env = append(env, "SP_MULTISITE=1")
			}
			h.mustRun(t, name, 0, nil, env...)
			if f := h.stateFile(); f != "" {
				t.Errorf("state file %s left behind: redis was up all along", f)
			}
		})
	}
}

// TestObjectCacheNonPersistentNotInRedis looks into redis from Go.
func TestObjectCacheNonPersistentNotInRedis(t *testing.T) {
	redis := startRedis(t)
	h := newOCHarness(t, redis)
	h.mustRun(t, "non_persistent", 0, nil)
	keys := redis.keys(t, h.prefix+":*")
	var persistent int
	for _, k := range keys {
		if strings.Contains(k, ":np:") || strings.Contains(k, ":np2:") {
			t.Errorf("non-persistent key in redis: %s", k)
		}
		if strings.Contains(k, ":persistent:") {
			persistent++
		}
	}
	if persistent != 1 {
		t.Errorf("want the one persistent key in redis, got keys %v", keys)
	}
}

// TestObjectCacheKeysAndTTL checks the key layout and the TTL from Go.
func TestObjectCacheKeysAndTTL(t *testing.T) {
	redis := startRedis(t)
	h := newOCHarness(t, redis)
	h.mustRun(t, "step_set_value", 0, nil, "SP_KEY=k", "SP_VALUE=v")
	keys := redis.keys(t, h.prefix+":*")
	var data []string
	for _, k := range keys {
		if k != h.prefix+":gens" {
			data = append(data, k)
		}
	}
	if len(data) != 1 || !regexp.MustCompile(`^`+regexp.QuoteMeta(h.prefix)+`:[0-9]+:g:0:k$`).MatchString(data[0]) {
		t.Fatalf("keys %v, want {prefix}:{site gen}:g:0:k and {prefix}:gens", keys)
	}
	if got, want := redis.do(t, "GET", data[0]), signed(data[0], `s:1:"v";`); got != want {
		t.Errorf("stored %q, want %q: HMAC-SHA256(key, len(rkey) rkey payload) payload", got, want)
	}
	if got := redis.do(t, "TTL", data[0]); got != int64(-1) {
		t.Errorf("TTL %v, want none", got)
	}
}

// TestObjectCacheRedisDiesMidRequest: redis goes away during a request (the
// PHP case shuts it down), the request carries on from its runtime cache and
// tries redis only once; the next request, with redis back, uses it again.
func TestObjectCacheRedisDiesMidRequest(t *testing.T) {
	redis := startRedis(t)
	h := newOCHarness(t, redis)
	h.mustRun(t, "step_dies_mid_request", 0, regexp.MustCompile(`^scalepress object cache: redis 127\.0\.0\.1:\d+ is unusable \([^)]*\); serving from the in-request cache until it is back\n$`))
	if !redis.exited(5 * time.Second) {
		t.Fatal("redis-server still runs after SHUTDOWN")
	}
	if h.stateFile() == "" {
		t.Fatal("no state file: the lost writes were not recorded")
	}

	if err := redis.start(); err != nil {
		t.Fatal(err)
	}
	res := h.mustRun(t, "step_get_value", 0, regexp.MustCompile(`is back; deleted|is back; flushed`), "SP_KEY=k")
	if got := res.lines()[0]; got != "<miss>" {
		t.Errorf("value %q from a redis that restarted empty", got)
	}
	s := stepStats(t, res)
	if s["status"] != "connected" {
		t.Errorf("next request: status %v, want connected", s["status"])
	}
	if h.stateFile() != "" {
		t.Error("state file still there after recovery")
	}
	h.mustRun(t, "step_set_value", 0, nil, "SP_KEY=k", "SP_VALUE=again")
	res = h.mustRun(t, "step_get_value", 0, nil, "SP_KEY=k")
	if got := res.lines()[0]; got != "again" {
		t.Errorf("after recovery: %q", got)
	}
}

// TestObjectCacheDownFromStart: redis unreachable for a whole request, then
// the backoff, then recovery.
func TestObjectCacheDownFromStart(t *testing.T) {
	redis := startRedis(t)
	h := newOCHarness(t, redis)
	redis.stop()
	downLog := regexp.MustCompile(`^(scalepress object cache: redis 127\.0\.0\.1:\d+ is unusable \([^)]*\); serving from the in-request cache until it is back\n)?$`)

	res := h.mustRun(t, "step_down_from_start", 0, downLog)
	if s := stepStats(t, res); s["status"] != "down" || s["connects"] != 1.0 {
		t.Errorf("stats %v, want down after 1 connect", s)
	}
	if !strings.Contains(res.stderr, "is unusable") {
		t.Error("the first failure is not logged")
	}

	// Within the backoff: no connect attempt at all, and no second log line.
	res = h.mustRun(t, "step_down_from_start", 0, downLog, "SP_RETRY=30")
	if s := stepStats(t, res); s["status"] != "down" || s["connects"] != 0.0 || s["backoff_skips"] != 1.0 {
		t.Errorf("stats %v, want a backoff skip and no connect", s)
	}
	if res.stderr != "" {
		t.Errorf("logged again while still down: %s", res.stderr)
	}

	// Redis is back, but the backoff still holds...
	if err := redis.start(); err != nil {
		t.Fatal(err)
	}
	res = h.mustRun(t, "step_get_value", 0, nil, "SP_KEY=k", "SP_RETRY=30")
	if s := stepStats(t, res); s["status"] != "down" {
		t.Errorf("stats %v, want down during the backoff", s)
	}
	// ...until it has passed.
	ageState(t, h.stateFile(), 31*time.Second)
	res = h.mustRun(t, "step_get_value", 0, regexp.MustCompile(`is back`), "SP_KEY=k", "SP_RETRY=30")
	if s := stepStats(t, res); s["status"] != "connected" || s["repair_flushes"] != 1.0 {
		t.Errorf("stats %v, want connected and the lost flush redone", s)
	}
}

// ageState moves the state file's last failure into the past.
func ageState(t *testing.T, path string, by time.Duration) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var s map[string]any
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatalf("state %s: %v", b, err)
	}
	s["down_at"] = s["down_at"].(float64) - by.Seconds()
	b, _ = json.Marshal(s)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestObjectCacheRepairsLostWrites: a node cannot reach redis while redis
// keeps its data (here: the node is pointed at a dead port). What the node
// failed to write must not be served stale once it reaches redis again.
func TestObjectCacheRepairsLostWrites(t *testing.T) {
	redis := startRedis(t)
	dead := freePort(t)
	back := regexp.MustCompile(`is back`)
	unusable := regexp.MustCompile(`is unusable`)

	t.Run("keys", func(t *testing.T) {
		h := newOCHarness(t, redis)
		h.mustRun(t, "step_set_value", 0, nil, "SP_KEY=k", "SP_VALUE=old")
		h.mustRun(t, "step_set_value", 0, nil, "SP_KEY=j", "SP_VALUE=kept")
		h.mustRun(t, "step_set_value", dead, unusable, "SP_KEY=k", "SP_VALUE=new")
		res := h.mustRun(t, "step_get_value", 0, back, "SP_KEY=k")
		if got := res.lines()[0]; got != "<miss>" {
			t.Errorf("k = %q after its write was lost, want a miss (never the stale value)", got)
		}
		if s := stepStats(t, res); s["repair_deletes"] != 1.0 || s["repair_flushes"] != 0.0 {
			t.Errorf("stats %v, want one key deleted and no flush", s)
		}
		res = h.mustRun(t, "step_get_value", 0, nil, "SP_KEY=j")
		if got := res.lines()[0]; got != "kept" {
			t.Errorf("j = %q, want kept: only the lost key is repaired", got)
		}
	})
	t.Run("flush_group", func(t *testing.T) {
		h := newOCHarness(t, redis)
		h.mustRun(t, "step_set_value", 0, nil, "SP_KEY=k", "SP_VALUE=old", "SP_GROUP=a")
		h.mustRun(t, "step_set_value", 0, nil, "SP_KEY=k", "SP_VALUE=kept", "SP_GROUP=b")
		h.mustRun(t, "step_flush_group", dead, unusable, "SP_GROUP=a")
		res := h.mustRun(t, "step_get_value", 0, back, "SP_KEY=k", "SP_GROUP=a")
		if got := res.lines()[0]; got != "<miss>" {
			t.Errorf("group a: %q after a lost flush_group", got)
		}
		res = h.mustRun(t, "step_get_value", 0, nil, "SP_KEY=k", "SP_GROUP=b")
		if got := res.lines()[0]; got != "kept" {
			t.Errorf("group b: %q", got)
		}
	})
	t.Run("flush", func(t *testing.T) {
		h := newOCHarness(t, redis)
		h.mustRun(t, "step_set_value", 0, nil, "SP_KEY=k", "SP_VALUE=old", "SP_GROUP=a")
		h.mustRun(t, "step_flush", dead, unusable)
		res := h.mustRun(t, "step_get_value", 0, back, "SP_KEY=k", "SP_GROUP=a")
		if got := res.lines()[0]; got != "<miss>" {
			t.Errorf("%q after a lost flush", got)
		}
		if s := stepStats(t, res); s["repair_flushes"] != 1.0 {
			t.Errorf("stats %v, want the flush redone", s)
		}
	})
}

// TestObjectCacheReadTimeout: redis stops answering (CLIENT PAUSE) while a
// request waits; the read timeout ends the wait once, and the pooled
// persistent connection does not hand a stale reply to the next request.
func TestObjectCacheReadTimeout(t *testing.T) {
	redis := startRedis(t) // its own: CLIENT PAUSE stops every client
	h := newOCHarness(t, redis)
	h.mustRun(t, "step_read_timeout", 0, regexp.MustCompile(`^scalepress object cache: redis \S+ is unusable \(read error[^\n]*\n(scalepress object cache: redis \S+ is back\n)?$`))
}

// TestObjectCacheWithoutPhpredis: php -n loads no extension; the drop-in
// must still work (runtime cache only) rather than break the site.
func TestObjectCacheWithoutPhpredis(t *testing.T) {
	h := newOCHarness(t, nil)
	script, _ := filepath.Abs(filepath.Join("testdata", "php", "objectcache.php"))
	res := runPHP(t, []string{"SP_DROPIN=" + h.dropin, "SP_REDIS_PORT=1", "SP_PREFIX=" + h.prefix, "SP_STATE_DIR=" + h.stateDir},
		"-n", script, "step_no_extension")
	if res.code != 0 || !strings.HasSuffix(res.stdout, "ok\n") {
		t.Fatalf("%s", res)
	}
	if !strings.Contains(res.stderr, "phpredis extension is not loaded") {
		t.Errorf("no log line saying why: %q", res.stderr)
	}
}

// TestObjectCacheRealWordPress boots Debian's WordPress (SHORTINIT, WP_DEBUG
// on, a fake database) with the drop-in: WordPress must pick it up, register
// its groups in it, and core code (last_changed, transients) must persist
// across requests without a database query.
func TestObjectCacheRealWordPress(t *testing.T) {
	const wp = "/usr/share/wordpress"
	if _, err := os.Stat(filepath.Join(wp, "wp-settings.php")); err != nil {
		t.Fatal("Debian's wordpress package is missing: run scripts/install-deps.sh")
	}
	redis := startRedis(t)
	content := t.TempDir()
	fake, err := os.ReadFile(filepath.Join("testdata", "php", "wp-fake-db.php"))
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"object-cache.php": objectCachePHP, "db.php": fake} {
		if err := os.WriteFile(filepath.Join(content, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	script, _ := filepath.Abs(filepath.Join("testdata", "php", "wp-shortinit.php"))
	env := []string{"SP_WP=" + wp, "SP_CONTENT=" + content, "SP_REDIS_PORT=" + strconv.Itoa(redis.port),
		"SP_PREFIX=wp-real", "SP_STATE_DIR=" + t.TempDir()}
	run := func(step string) map[string]string {
		t.Helper()
		res := runPHP(t, env, "-d", "display_errors=1", "-d", "error_reporting=-1", script, step)
		if res.code != 0 || !strings.HasSuffix(res.stdout, "ok\n") || res.stderr != "" {
			t.Fatalf("%s: %s", step, res)
		}
		out := map[string]string{}
		for _, l := range res.lines() {
			if k, v, ok := strings.Cut(l, "="); ok {
				out[k] = v
			} else if l != "ok" {
				t.Errorf("%s printed %q (a notice?)", step, l)
			}
		}
		return out
	}
	first := run("first")
	if ttl := redis.do(t, "TTL", first["transient_key"]); ttl != int64(1) {
		t.Errorf("transient with 1 s expiration: TTL %v", ttl)
	}
	second := run("second")
	if diff := cmp.Diff(first["last_changed"], second["last_changed"]); diff != "" || first["last_changed"] == "" {
		t.Errorf("last_changed not kept across requests: %q then %q", first["last_changed"], second["last_changed"])
	}
}

// TestObjectCacheForgedValue: a value put into redis by anyone but the
// drop-in is a miss, and the object in it is never unserialised. Go plays
// the other client of redis here, for the exact key WordPress would read.
func TestObjectCacheForgedValue(t *testing.T) {
	redis := startRedis(t)
	h := newOCHarness(t, redis)
	h.mustRun(t, "step_set_value", 0, nil, "SP_KEY=k", "SP_VALUE=real")
	var key string
	for _, k := range redis.keys(t, h.prefix+":*") {
		if strings.HasSuffix(k, ":k") {
			key = k
		}
	}
	if key == "" {
		t.Fatal("the drop-in wrote no key")
	}
	// A PHP object whose __wakeup would write the canary file.
	obj := `O:9:"SP_Canary":1:{s:5:"armed";b:1;}`
	for _, tc := range []struct{ name, raw string }{
		{"no MAC", obj},
		{"a MAC of 32 zero bytes", strings.Repeat("\x00", 32) + obj},
		{"the MAC of another value", redis.do(t, "GET", key).(string)[:32] + obj},
		{"signed for another key", signed(key+"x", obj)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			redis.do(t, "SET", key, tc.raw)
			res := h.run(t, "step_get_value", 0, "SP_KEY=k")
			if b, err := os.ReadFile(h.canary); err == nil {
				os.Remove(h.canary)
				t.Fatalf("the forged object was unserialised: its magic methods ran:\n%s", b)
			}
			if res.code != 0 || res.stderr != "" {
				t.Fatalf("%s", res)
			}
			if got := res.lines()[0]; got != "<miss>" {
				t.Errorf("read %q, want a miss", got)
			}
			if s := stepStats(t, res); s["rejected"] != 1.0 {
				t.Errorf("stats %v, want 1 rejected", s)
			}
		})
	}
	// The harness can write the canary: a value signed with the key is
	// unserialised (so the subtests above prove the MAC check, not a broken
	// payload).
	redis.do(t, "SET", key, signed(key, obj))
	h.run(t, "step_get_value", 0, "SP_KEY=k")
	if _, err := os.Stat(h.canary); err != nil {
		t.Fatalf("a signed object was not unserialised: %v", err)
	}
	os.Remove(h.canary)
}

// TestObjectCacheRedisPassword: the drop-in authenticates with
// WP_REDIS_PASSWORD, in the same round trip as its first commands.
func TestObjectCacheRedisPassword(t *testing.T) {
	redis := startRedisWithPassword(t, "pw-0123456789abcdef0123456789abcdef")
	h := newOCHarness(t, redis)
	res := h.mustRun(t, "step_set_value", 0, nil, "SP_KEY=k", "SP_VALUE=v")
	if s := stepStats(t, res); s["status"] != "connected" || s["redis_calls"] != 2.0 {
		t.Errorf("stats %v, want connected after connect (AUTH, SELECT, generations) + SET", s)
	}
	res = h.mustRun(t, "step_get_value", 0, nil, "SP_KEY=k")
	if got := res.lines()[0]; got != "v" {
		t.Errorf("read %q", got)
	}
	unusable := regexp.MustCompile(`^scalepress object cache: redis 127\.0\.0\.1:\d+ is unusable \(authentication failed .*\); serving from the in-request cache until it is back\n$`)
	for _, tc := range []struct {
		name, password, wantErr string
	}{
		{"wrong password", "wrong", "authentication failed"},
		{"no password", "", "authentication failed (WP_REDIS_PASSWORD is not set): NOAUTH"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newOCHarness(t, redis)
			h.redis = &redisServer{port: redis.port, password: tc.password}
			res := h.mustRun(t, "step_get_value", 0, unusable, "SP_KEY=k")
			s := stepStats(t, res)
			if s["status"] != "down" || !strings.Contains(s["last_error"].(string), tc.wantErr) {
				t.Errorf("stats %v, want down with %q", s, tc.wantErr)
			}
		})
	}
}

// TestObjectCacheWithoutSigningKey: without SCALEPRESS_OBJECT_CACHE_KEY the
// drop-in cannot tell its values from anyone else's, so it leaves redis alone.
func TestObjectCacheWithoutSigningKey(t *testing.T) {
	redis := startRedis(t)
	h := newOCHarness(t, redis)
	h.mustRun(t, "step_no_signing_key", 0, regexp.MustCompile(`is unusable \(SCALEPRESS_OBJECT_CACHE_KEY is not set`))
}
