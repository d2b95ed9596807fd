package pipelines

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/kediff/kediff/internal/limitedfile"
	"gopkg.in/yaml.v3"
)

// Bounds on a config file, far above any real one (sample.yaml is 3 KB
// and about 150 values): a hostile file (a YAML "billion laughs" alias bomb,
// thousands of nested levels, gigabytes) is refused with a clear error
// before it is decoded.
const (
	MaxConfigBytes  = 1 << 20
	MaxConfigDepth  = 32
	MaxConfigValues = 100_000 // nodes, with aliases expanded
)

// readConfigFile reads the config file at path within the bounds above.
func readConfigFile(path string) ([]byte, error) {
	data, err := limitedfile.Read(path, MaxConfigBytes, "a config is a short YAML file (see pipelines/sample.yaml)")
	if err != nil {
		return nil, err
	}
	if err := checkYAMLShape(data); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return data, nil
}

// checkYAMLShape parses data into nodes (the parser does not expand aliases)
// and refuses documents nested deeper than MaxConfigDepth or holding more
// than MaxConfigValues nodes once aliases are expanded, so that decoding
// cannot blow up whatever the target type.
func checkYAMLShape(data []byte) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		m := map[*yaml.Node]yamlSize{}
		if _, err := measureYAML(&n, m, 0); err != nil {
			return err
		}
	}
}

// yamlSize is a node's count of nodes and its height, aliases expanded.
type yamlSize struct{ nodes, height int }

// measureYAML sizes n, memoising anchored nodes in m so that the walk itself
// stays linear in the file however many times an alias repeats them. onPath
// counts the aliases being followed, which stops alias cycles.
func measureYAML(n *yaml.Node, m map[*yaml.Node]yamlSize, onPath int) (yamlSize, error) {
	if s, ok := m[n]; ok {
		return s, nil
	}
	if onPath > MaxConfigDepth {
		return yamlSize{}, fmt.Errorf("line %d: nested more than %d levels deep; a config is a few levels of sections and keys", n.Line, MaxConfigDepth)
	}
	var s yamlSize
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		a, err := measureYAML(n.Alias, m, onPath+1)
		if err != nil {
			return s, err
		}
		s = a
	} else {
		s = yamlSize{nodes: 1}
		for _, c := range n.Content {
			cs, err := measureYAML(c, m, onPath)
			if err != nil {
				return s, err
			}
			s.nodes += cs.nodes
			s.height = max(s.height, cs.height+1)
		}
	}
	switch {
	case s.height > MaxConfigDepth:
		return s, fmt.Errorf("line %d: nested more than %d levels deep; a config is a few levels of sections and keys", n.Line, MaxConfigDepth)
	case s.nodes > MaxConfigValues:
		return s, fmt.Errorf("line %d: expands to more than %d values through YAML aliases (*name); a config is a few hundred: write the values out", n.Line, MaxConfigValues)
	}
	m[n] = s
	return s, nil
}
