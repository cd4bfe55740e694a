package bolt

import (
	"context"
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/trailproof/trailproof/internal/core"
)

// bucketSensors: integration ID -> (sensor UUID -> JSON core.Sensor), created on first write.
var bucketSensors = []byte("sensors")

var _ core.SensorStore = (*Store)(nil)

// PutSensors merges the sightings into the stored sensors in one transaction.
func (s *Store) PutSensors(_ context.Context, integrationID string, sensors []core.Sensor) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		top, err := tx.CreateBucketIfNotExists(bucketSensors)
		if err != nil {
			return err
		}
		b, err := top.CreateBucketIfNotExists([]byte(integrationID))
		if err != nil {
			return err
		}
		for _, sn := range sensors {
			if v := b.Get([]byte(sn.UUID)); v != nil {
				var known core.Sensor
				if err := json.Unmarshal(v, &known); err != nil {
					return fmt.Errorf("decode sensor %s: %w", sn.UUID, err)
				}
				sn = core.MergeSensor(known, sn)
			}
			v, err := json.Marshal(sn)
			if err != nil {
				return err
			}
			if err := b.Put([]byte(sn.UUID), v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("put sensors of integration %s: %w", integrationID, err)
	}
	return nil
}

// ListSensors returns the integration's sensors in UUID order.
func (s *Store) ListSensors(_ context.Context, integrationID string) ([]core.Sensor, error) {
	out := []core.Sensor{}
	err := s.db.View(func(tx *bolt.Tx) error {
		top := tx.Bucket(bucketSensors)
		if top == nil {
			return nil
		}
		b := top.Bucket([]byte(integrationID))
		if b == nil {
			return nil
		}
		return b.ForEach(func(_, v []byte) error {
			var sn core.Sensor
			if err := json.Unmarshal(v, &sn); err != nil {
				return err
			}
			out = append(out, sn)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list sensors of integration %s: %w", integrationID, err)
	}
	return out, nil
}
