package mongotest

import (
	"encoding/binary"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// opMsgBytes builds an OP_MSG request with the given flags and body, preceded by
// a document sequence section (as drivers send for inserts and updates).
func opMsgBytes(t *testing.T, flags uint32, body bson.D) []byte {
	t.Helper()
	doc, err := bson.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	seqDoc, _ := bson.Marshal(bson.D{{Key: "q", Value: bson.D{}}})
	var msg []byte
	msg = binary.LittleEndian.AppendUint32(msg, 0) // length, set below
	msg = binary.LittleEndian.AppendUint32(msg, 7) // requestID
	msg = binary.LittleEndian.AppendUint32(msg, 0) // responseTo
	msg = binary.LittleEndian.AppendUint32(msg, opMsg)
	msg = binary.LittleEndian.AppendUint32(msg, flags)
	msg = append(msg, 1) // kind 1: size, identifier, documents
	seq := binary.LittleEndian.AppendUint32(nil, uint32(4+len("updates")+1+len(seqDoc)))
	seq = append(append(append(seq, "updates"...), 0), seqDoc...)
	msg = append(msg, seq...)
	msg = append(msg, 0) // kind 0: the body
	msg = append(msg, doc...)
	binary.LittleEndian.PutUint32(msg, uint32(len(msg)))
	return msg
}

func TestModifies(t *testing.T) {
	tests := []struct {
		name  string
		flags uint32
		body  bson.D
		coll  string
		want  bool
	}{
		{name: "update", body: bson.D{{Key: "update", Value: "records"}, {Key: "$db", Value: "x"}}, coll: "records", want: true},
		{name: "findAndModify", body: bson.D{{Key: "findAndModify", Value: "counters"}}, coll: "counters", want: true},
		{name: "delete", body: bson.D{{Key: "delete", Value: "users"}}, coll: "users", want: true},
		{name: "insert", body: bson.D{{Key: "insert", Value: "changes"}}},
		{name: "find", body: bson.D{{Key: "find", Value: "records"}}},
		{name: "unacknowledged update", flags: moreToCome, body: bson.D{{Key: "update", Value: "records"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			coll, ok := modifies(opMsgBytes(t, tt.flags, tt.body))
			if ok != tt.want || coll != tt.coll {
				t.Errorf("modifies = %q, %v; want %q, %v", coll, ok, tt.coll, tt.want)
			}
		})
	}
	if _, ok := modifies([]byte{1, 2, 3}); ok {
		t.Error("a short message modifies nothing")
	}
}
