package e2e

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/scalepress/scalepress/internal/token"
)

// derivedKey is the key for purpose derived from the environment's root key,
// as the controller derives it.
func (s *stack) derivedKey(t *testing.T, purpose string) token.Key {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(s.dir, "secrets", "root-key"))
	if err != nil {
		t.Fatal(err)
	}
	k, err := token.ParseKey(string(b))
	if err != nil {
		t.Fatal(err)
	}
	return k.Derive(purpose)
}

// redisPassword is redis's requirepass.
func (s *stack) redisPassword(t *testing.T) string { return s.derivedKey(t, token.Redis).Hex() }

// redisDo sends one command (after AUTH when password is set) and returns
// the reply: string, int64, nil, []any, or an error reply as error.
func redisDo(t *testing.T, addr, password string, args ...string) (any, error) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	var b bytes.Buffer
	write := func(args ...string) {
		fmt.Fprintf(&b, "*%d\r\n", len(args))
		for _, a := range args {
			fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
		}
	}
	if password != "" {
		write("AUTH", password)
	}
	write(args...)
	if _, err := c.Write(b.Bytes()); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(c)
	if password != "" {
		if _, err := readRESP(r); err != nil {
			t.Fatalf("redis AUTH: %v", err)
		}
	}
	return readRESP(r)
}

// mustRedis is redisDo that fails the test on an error reply.
func mustRedis(t *testing.T, addr, password string, args ...string) any {
	t.Helper()
	v, err := redisDo(t, addr, password, args...)
	if err != nil {
		t.Fatalf("redis %v: %v", args[0], err)
	}
	return v
}

type respError string

func (e respError) Error() string { return string(e) }

func readRESP(r *bufio.Reader) (any, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return nil, err
	}
	line = strings.TrimSuffix(line, "\r\n")
	if line == "" {
		return nil, errors.New("empty reply")
	}
	switch line[0] {
	case '+':
		return line[1:], nil
	case '-':
		return nil, respError(line[1:])
	case ':':
		return strconv.ParseInt(line[1:], 10, 64)
	case '$':
		n, err := strconv.Atoi(line[1:])
		if err != nil || n < 0 {
			return nil, err
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return nil, err
		}
		return string(buf[:n]), nil
	case '*':
		n, err := strconv.Atoi(line[1:])
		if err != nil || n < 0 {
			return nil, err
		}
		out := make([]any, n)
		for i := range out {
			if out[i], err = readRESP(r); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	return nil, fmt.Errorf("unexpected reply %q", line)
}

// objectCacheKey is the redis key the drop-in reads for key in group now:
// {prefix}:{site generation}:{group}:{group generation}:{key}, the
// generations from the one {prefix}:gens hash (php/object-cache.php).
func objectCacheKey(t *testing.T, addr, password, group, key string) string {
	t.Helper()
	keys := mustRedis(t, addr, password, "KEYS", "*:gens").([]any)
	if len(keys) != 1 {
		t.Fatalf("redis keys *:gens: %v, want the site's one", keys)
	}
	gensKey := keys[0].(string)
	flat := mustRedis(t, addr, password, "HGETALL", gensKey).([]any)
	gens := map[string]string{}
	for i := 0; i+1 < len(flat); i += 2 {
		gens[flat[i].(string)] = flat[i+1].(string)
	}
	groupGen := gens["g:"+group]
	if groupGen == "" {
		groupGen = "0"
	}
	return fmt.Sprintf("%s:%s:%s:%s:%s", strings.TrimSuffix(gensKey, ":gens"), gens["_site"], group, groupGen, key)
}

// signedByDropin reports whether raw is a value the object-cache drop-in
// wrote under rkey with the environment's key (see php/object-cache.php).
func signedByDropin(key token.Key, rkey, raw string) bool {
	if len(raw) <= sha256.Size {
		return false
	}
	m := hmac.New(sha256.New, []byte(key.Hex()))
	binary.Write(m, binary.BigEndian, uint32(len(rkey)))
	m.Write([]byte(rkey))
	m.Write([]byte(raw[sha256.Size:]))
	return hmac.Equal(m.Sum(nil), []byte(raw[:sha256.Size]))
}

// TestWordPressHardening: redis takes only clients that know its password,
// WordPress uses no value from redis that its object cache did not sign
// (and unserialises none), the install ran PHP as the PHP user, and
// wordpress.lock_code keeps wp-admin from installing code.
func TestWordPressHardening(t *testing.T) {
	const block = 66
	s := newStack(t, block, 1)
	cfg := strings.Replace(stackConfig(block, 1), "wordpress:\n", "wordpress:\n  lock_code: true\n", 1)
	if err := os.WriteFile(s.config, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	s.up(t)
	st := s.status(t)
	addr := st.Redis.Addr
	password := s.redisPassword(t)
	host, port, _ := net.SplitHostPort(addr)
	asRoot := os.Geteuid() == 0

	t.Run("redis answers only with the password", func(t *testing.T) {
		out, _ := exec.Command("redis-cli", "-h", host, "-p", port, "PING").CombinedOutput()
		if !strings.Contains(string(out), "NOAUTH") {
			t.Errorf("redis-cli PING without the password: %q, want NOAUTH", out)
		}
		out, err := exec.Command("redis-cli", "-h", host, "-p", port, "--no-auth-warning", "-a", password, "PING").CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != "PONG" {
			t.Errorf("redis-cli PING with the password: %q %v, want PONG", out, err)
		}
		out, _ = exec.Command("redis-cli", "-h", host, "-p", port, "--no-auth-warning", "-a", "wrong", "PING").CombinedOutput()
		if !strings.Contains(string(out), "WRONGPASS") && !strings.Contains(string(out), "NOAUTH") {
			t.Errorf("redis-cli PING with a wrong password: %q", out)
		}
		conf := filepath.Join(s.dir, "redis", "redis.conf")
		fi, err := os.Stat(conf)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want 0600 (it holds the password)", conf, fi.Mode().Perm())
		}
		if asRoot {
			u, _ := user.Lookup("redis")
			if uid := strconv.Itoa(int(fi.Sys().(*syscall.Stat_t).Uid)); u == nil || uid != u.Uid {
				t.Errorf("%s: owner uid %s, want redis", conf, uid)
			}
		}
		if st := s.status(t); st.Redis == nil || st.Redis.State != "up" {
			t.Errorf("status: redis %+v, want up (the health check authenticates)", st.Redis)
		}
	})

	b := newBrowser(t)
	t.Run("the site works with the object cache", func(t *testing.T) {
		hits := redisInfo(t, addr, password, "keyspace_hits")
		mustContain(t, "search page", b.get(s.site+"/?s=warm"), "e2e site")
		if p := b.login(s.site, "admin", adminPassword(t, s)); !strings.Contains(p.url, "/wp-admin/") {
			t.Fatalf("login failed: %s", p.url)
		}
		mustContain(t, "dashboard", b.get(s.site+"/wp-admin/"), "Dashboard")
		if after := redisInfo(t, addr, password, "keyspace_hits"); after <= hits {
			t.Errorf("redis keyspace hits %d -> %d: WordPress did not use the object cache", hits, after)
		}
	})

	t.Run("wordpress.lock_code: wp-admin refuses to install plugins", func(t *testing.T) {
		// Without install_plugins the page is not even in the admin menu:
		// "Sorry, you are not allowed to access this page.", 403.
		p := b.get(s.site + "/wp-admin/plugin-install.php?tab=upload")
		if p.status != 403 || !strings.Contains(p.body, "Sorry, you are not allowed to") {
			t.Errorf("plugin-install.php: status %d, body %.300q; want 403 and the refusal", p.status, p.body)
		}
		if p := b.get(s.site + "/wp-admin/"); p.status != 200 || !strings.Contains(p.body, "Dashboard") {
			t.Errorf("dashboard: status %d: the admin itself must still work", p.status)
		}
	})

	t.Run("WordPress was installed by PHP running as the PHP user", func(t *testing.T) {
		want := "php_user=root"
		if asRoot {
			want = "php_user=www-data"
		} else if u, err := user.Current(); err == nil {
			want = "php_user=" + u.Username
		}
		log, err := os.ReadFile(filepath.Join(s.dir, "logs", "controller.log"))
		if err != nil {
			t.Fatal(err)
		}
		line := grepLines(string(log), "WordPress installed")
		if !strings.Contains(line, want) {
			t.Errorf("controller log: %q, want %s", line, want)
		}
	})

	cacheKey := s.derivedKey(t, token.ObjectCache)
	t.Run("a forged alloptions in redis is not used", func(t *testing.T) {
		key := objectCacheKey(t, addr, password, "options", "alloptions")
		orig := mustRedis(t, addr, password, "GET", key).(string)
		if !signedByDropin(cacheKey, key, orig) {
			t.Fatalf("alloptions in redis is not signed by the drop-in: %.80q", orig)
		}
		// Keep the real MAC, change the blog name in the payload (same
		// length, so the payload stays well-formed for igbinary and
		// serialize alike).
		if !strings.Contains(orig[32:], "e2e site") {
			t.Fatalf("no blog name in alloptions: %.200q", orig)
		}
		forged := orig[:32] + strings.ReplaceAll(orig[32:], "e2e site", "FORGED!!")
		mustRedis(t, addr, password, "SET", key, forged)
		p := newBrowser(t).get(s.site + "/?s=forged-alloptions")
		if p.status != 200 || strings.Contains(p.body, "FORGED!!") || !strings.Contains(p.body, "e2e site") {
			t.Errorf("search page: status %d, forged name shown %v, real name shown %v",
				p.status, strings.Contains(p.body, "FORGED!!"), strings.Contains(p.body, "e2e site"))
		}
		now, err := redisDo(t, addr, password, "GET", key)
		if err != nil {
			t.Fatal(err)
		}
		if v, _ := now.(string); v == forged || (now != nil && !signedByDropin(cacheKey, key, v)) {
			t.Errorf("after the request redis holds %.80q: want the forged value read, rejected and replaced", now)
		}
	})

	t.Run("a forged object in redis is never unserialised", func(t *testing.T) {
		canaryDir := filepath.Join(s.dir, "canary")
		if err := os.MkdirAll(canaryDir, 0o777); err != nil {
			t.Fatal(err)
		}
		os.Chmod(canaryDir, 0o777)
		marker := filepath.Join(canaryDir, "ran")
		// A class with magic methods, as any plugin may define; loaded on
		// every request before the main query reads posts' last_changed.
		plugin := fmt.Sprintf(`<?php
class SP_E2E_Canary {
	public function __wakeup() { file_put_contents(%[1]q, "__wakeup\n", FILE_APPEND); }
	public function __destruct() { file_put_contents(%[1]q, "__destruct\n", FILE_APPEND); }
}
`, marker)
		for _, n := range s.status(t).Nodes {
			dir := filepath.Join(n.Docroot, "wp-content", "mu-plugins")
			if err := os.WriteFile(filepath.Join(dir, "sp-e2e-canary.php"), []byte(plugin), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		newBrowser(t).get(s.site + "/?s=canary-warm")
		key := objectCacheKey(t, addr, password, "posts", "last_changed")
		rnd := make([]byte, 32)
		rand.Read(rnd)
		forged := string(rnd) + `O:13:"SP_E2E_Canary":0:{}`
		mustRedis(t, addr, password, "SET", key, forged)
		p := newBrowser(t).get(s.site + "/?s=canary")
		if ran, err := os.ReadFile(marker); err == nil {
			t.Fatalf("the forged object's magic methods ran:\n%s", ran)
		}
		if p.status != 200 {
			t.Errorf("search page: status %d", p.status)
		}
		if now, _ := redisDo(t, addr, password, "GET", key); now == forged {
			t.Error("the forged last_changed is still in redis: WordPress did not read it, so this proves nothing")
		}
	})

}
