// Package resource is nimbus's resource model: Go types with Azure's JSON
// shape, resource IDs, store keys and the validation rules of each resource
// type. It is pure: no I/O, no HTTP.
//
// JSON convention: a slice field without `omitempty` is a collection property
// that clients expect as [] when empty; the arm package fills nil ones before
// answering. Slices with `omitempty` are left out when nil.
package resource

import (
	"github.com/google/uuid"
)

// Provisioning states as clients see them.
const (
	Succeeded = "Succeeded"
	Updating  = "Updating"
	Creating  = "Creating"
	Deleting  = "Deleting"
	Failed    = "Failed"
)

// Envelope is the part every tracked top-level resource shares.
type Envelope struct {
	ID       string            `json:"id,omitempty"`
	Name     string            `json:"name,omitempty"`
	Type     string            `json:"type,omitempty"`
	Location string            `json:"location,omitempty"`
	Tags     map[string]string `json:"tags,omitempty"`
	Etag     string            `json:"etag,omitempty"`
}

// Meta returns e; embedding Envelope gives a type the Meta method that the arm
// framework uses.
func (e *Envelope) Meta() *Envelope { return e }

// SubResource is a reference to another resource by ID.
type SubResource struct {
	ID string `json:"id,omitempty"`
}

// NewEtag returns a fresh weak ETag value, W/"<uuid>".
func NewEtag() string { return `W/"` + uuid.NewString() + `"` }

// NewGUID returns a random GUID string (resourceGuid fields).
func NewGUID() string { return uuid.NewString() }

// ValidateTags checks Azure's tag limits: at most 50 tags, names up to 512
// characters, values up to 256.
func ValidateTags(tags map[string]string) error {
	if len(tags) > 50 {
		return BadRequest("InvalidTag", "The number of tags (%d) exceeds the maximum of 50.", len(tags))
	}
	for k, v := range tags {
		if k == "" || len(k) > 512 {
			return BadRequest("InvalidTagNameCharacters", "The tag name '%s' must be 1 to 512 characters long.", k)
		}
		if len(v) > 256 {
			return BadRequest("InvalidTag", "The value of tag '%s' exceeds 256 characters.", k)
		}
	}
	return nil
}

// ValidateLocation checks that a tracked resource has a location.
func ValidateLocation(loc string) error {
	if loc == "" {
		return BadRequest("LocationRequired", "The location property is required for this definition.")
	}
	return nil
}
