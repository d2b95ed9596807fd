package shards

// Sample is one image-text pair as read from an input shard, before any
// processing. Readers fill it; the pipeline turns it into a Row or a Reject.
type Sample struct {
	// Shard is the output shard this sample belongs to (see ShardID).
	Shard string
	// Index is the sample's position in its input shard, counting from 0 in
	// read order. Output rows keep this order, which makes shards reproducible.
	Index int
	// Key identifies the sample inside its shard: the tar member basename up to
	// the first dot, a Parquet "key" column or row number, or a file stem.
	Key string
	// Source is where the sample came from: the input shard URL plus "#" and
	// the member, row or file name.
	Source string

	// Image holds the encoded image bytes as stored in the input; ImageName is
	// the member/column/file name they came from ("0001.jpg", "jpg", "image").
	Image     []byte
	ImageName string
	HasImage  bool

	Caption    string
	HasCaption bool

	// Meta is the sample's JSON sidecar or extra columns, as raw JSON; empty when
	// the input has none.
	Meta []byte

	// Reject, when not empty, is why the reader could not produce a usable
	// sample (see the Reason constants). Detail says more for humans.
	Reject Reason
	Detail string
}

// Reason is a short, stable code naming why a sample was rejected. Codes are
// what the rejects file and the stats count by, so they never change meaning.
type Reason string

// Reasons found while reading input shards. The image and text stages define
// their own codes in the same style.
const (
	ReasonNoImage         Reason = "no_image"         // caption/json without an image member
	ReasonNoCaption       Reason = "no_caption"       // image without a caption
	ReasonDuplicateMember Reason = "duplicate_member" // two members with the same key and extension
	ReasonUnsafePath      Reason = "unsafe_path"      // tar member with ../ or an absolute path
	ReasonTruncatedInput  Reason = "truncated_input"  // the input shard ended mid-member
	ReasonUnreadableInput Reason = "unreadable_input" // a row or file could not be read
)
