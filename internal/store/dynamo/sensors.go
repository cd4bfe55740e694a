package dynamo

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/trailproof/trailproof/internal/core"
)

// Sensors: PK SENSORS#<integrationId>, SK <uuid>, with accountId, region, firstSeen and lastSeen
// (epoch milliseconds). Sensors do not expire: they describe the integration, not a run.

func sensorPK(integrationID string) string { return "SENSORS#" + integrationID }

var _ core.SensorStore = (*Store)(nil)

// PutSensors upserts each sensor: firstSeen is written only when absent, lastSeen only when later.
func (s *Store) PutSensors(ctx context.Context, integrationID string, sensors []core.Sensor) error {
	for _, sn := range sensors {
		_, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName:        &s.table,
			Key:              key(sensorPK(integrationID), sn.UUID),
			UpdateExpression: aws.String("SET accountId = :a, #r = :r, firstSeen = if_not_exists(firstSeen, :f), lastSeen = :l"),
			// Only move lastSeen forward; a sighting older than the stored one changes nothing
			// but firstSeen, which the next statement handles.
			ConditionExpression:      aws.String("attribute_not_exists(lastSeen) OR lastSeen < :l"),
			ExpressionAttributeNames: map[string]string{"#r": "region"},
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":a": attrS(sn.AccountID), ":r": attrS(sn.Region),
				":f": attrN(sn.FirstSeen.UnixMilli()), ":l": attrN(sn.LastSeen.UnixMilli()),
			},
		})
		if err != nil && !isConditionFailed(err) {
			return fmt.Errorf("put sensor %s of integration %s: %w", sn.UUID, integrationID, err)
		}
		// An earlier first sighting (runs are not read in time order) moves firstSeen back.
		_, err = s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName:                 &s.table,
			Key:                       key(sensorPK(integrationID), sn.UUID),
			UpdateExpression:          aws.String("SET firstSeen = :f"),
			ConditionExpression:       aws.String("attribute_exists(PK) AND firstSeen > :f"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":f": attrN(sn.FirstSeen.UnixMilli())},
		})
		if err != nil && !isConditionFailed(err) {
			return fmt.Errorf("put sensor %s of integration %s: %w", sn.UUID, integrationID, err)
		}
	}
	return nil
}

// ListSensors queries the integration's sensor items.
func (s *Store) ListSensors(ctx context.Context, integrationID string) ([]core.Sensor, error) {
	out := []core.Sensor{}
	err := s.query(ctx, &dynamodb.QueryInput{
		KeyConditionExpression:    aws.String("PK = :pk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": attrS(sensorPK(integrationID))},
		ConsistentRead:            aws.Bool(true),
	}, func(item map[string]types.AttributeValue) error {
		sn := core.NewSensor(getS(item, "accountId"), getS(item, "region"), time.Time{})
		sn.FirstSeen = time.UnixMilli(getN(item, "firstSeen")).UTC()
		sn.LastSeen = time.UnixMilli(getN(item, "lastSeen")).UTC()
		out = append(out, sn)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list sensors of integration %s: %w", integrationID, err)
	}
	return out, nil
}
