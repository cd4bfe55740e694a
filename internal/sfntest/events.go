package sfntest

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// SampleEvent decodes the sample event events/<fn>/<name>.json into v.
func SampleEvent(fn, name string, v any) error {
	root, err := Root()
	if err != nil {
		return err
	}
	file := filepath.Join(root, "events", fn, name+".json")
	data, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	return nil
}
