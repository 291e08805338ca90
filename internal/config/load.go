package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// ParseError is a problem in the file itself, at a line.
type ParseError struct {
	File string
	Line int // 0 when unknown
	Msg  string
}

func (e *ParseError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.File, e.Msg)
}

// ErrInvalid wraps every error from Load and Parse: the configuration is wrong
// (as opposed to unreadable), which the CLI reports with exit code 2.
var ErrInvalid = errors.New("invalid configuration")

// maxFileSize bounds what Load will read: a config is a few KiB.
const maxFileSize = 1 << 20

// Load reads, parses and validates the file at path.
func Load(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	return Parse(path, data)
}

// Parse parses data (named name in messages) over the defaults and validates the result.
func Parse(name string, data []byte) (Config, error) {
	cfg := Default()
	if len(data) > maxFileSize {
		return cfg, invalid(&ParseError{File: name, Msg: fmt.Sprintf("file is %d bytes; a config is at most %d", len(data), maxFileSize)})
	}
	if len(bytes.TrimSpace(data)) > 0 {
		var doc yaml.Node
		dec := yaml.NewDecoder(bytes.NewReader(data))
		if err := dec.Decode(&doc); err != nil {
			return cfg, invalid(yamlError(name, err))
		}
		var extra yaml.Node
		if err := dec.Decode(&extra); err == nil {
			return cfg, invalid(&ParseError{File: name, Line: extra.Line, Msg: "more than one YAML document; a config is one"})
		}
		if err := checkKeys(name, &doc, reflect.TypeOf(cfg), ""); err != nil {
			return cfg, invalid(err)
		}
		edgesGiven := hasKey(&doc, "edges")
		if edgesGiven {
			cfg.Edges = nil
		}
		if err := doc.Decode(&cfg); err != nil {
			return cfg, invalid(yamlError(name, err))
		}
		for i := range cfg.Edges {
			if cfg.Edges[i].ID == "" {
				cfg.Edges[i].ID = fmt.Sprintf("edge-%d", i+1)
			}
			if cfg.Edges[i].Region == "" {
				cfg.Edges[i].Region = "default"
			}
		}
	}
	if cfg.DNS.Enabled && cfg.DNS.MetricsAddr == "" {
		cfg.DNS.MetricsAddr = DefaultDNSMetricsAddr(cfg.DNS.Addr)
	}
	if err := cfg.Validate(); err != nil {
		return cfg, invalid(fmt.Errorf("%s: %w", name, err))
	}
	return cfg, nil
}

func invalid(err error) error { return fmt.Errorf("%w: %w", ErrInvalid, err) }

var yamlLineRE = regexp.MustCompile(`line (\d+): (.*)`)

// yamlError turns yaml.v3's messages into file:line: message.
func yamlError(name string, err error) error {
	var te *yaml.TypeError
	if errors.As(err, &te) && len(te.Errors) > 0 {
		err = errors.New(te.Errors[0])
	}
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return &ParseError{File: name, Line: line, Msg: m[2]}
	}
	return &ParseError{File: name, Msg: msg}
}

func hasKey(doc *yaml.Node, key string) bool {
	n := doc
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	if n.Kind != yaml.MappingNode {
		return false
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return true
		}
	}
	return false
}

// checkKeys walks the YAML tree beside the Go type and rejects keys the type
// does not have, naming the file, the line and the key.
func checkKeys(name string, n *yaml.Node, t reflect.Type, path string) error {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if n.Kind == yaml.DocumentNode {
		if len(n.Content) == 0 {
			return nil
		}
		return checkKeys(name, n.Content[0], t, path)
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			if n.Tag == "!!null" || n.Kind == yaml.ScalarNode && reflect.PointerTo(t).Implements(unmarshalerType) {
				return nil // null, or a type that reads a scalar itself (releases.auto)
			}
			where := path
			if where == "" {
				where = "the top level"
			}
			return &ParseError{File: name, Line: n.Line, Msg: fmt.Sprintf("%s must be a mapping of keys", where)}
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			f, ok := fieldByTag(t, k.Value)
			if !ok {
				where := "at the top level"
				if path != "" {
					where = "in " + path
				}
				return &ParseError{File: name, Line: k.Line, Msg: fmt.Sprintf("unknown key %q %s (known: %s)", k.Value, where, strings.Join(tags(t), ", "))}
			}
			child := k.Value
			if path != "" {
				child = path + "." + k.Value
			}
			if err := checkKeys(name, n.Content[i+1], f.Type, child); err != nil {
				return err
			}
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return nil // the decoder reports the type mismatch
		}
		for i, item := range n.Content {
			if err := checkKeys(name, item, t.Elem(), fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
	}
	return nil
}

var unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()

func fieldByTag(t reflect.Type, key string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		if tagName(f) == key {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

func tags(t reflect.Type) []string {
	var out []string
	for i := range t.NumField() {
		if n := tagName(t.Field(i)); n != "" && n != "-" {
			out = append(out, n)
		}
	}
	return out
}

func tagName(f reflect.StructField) string {
	tag := f.Tag.Get("yaml")
	if i := strings.IndexByte(tag, ','); i >= 0 {
		tag = tag[:i]
	}
	return tag
}
