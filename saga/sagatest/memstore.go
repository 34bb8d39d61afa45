package sagatest

import (
	"context"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/cairnhq/cairn/saga"
)

// MemStore is a [saga.Store] in memory, for tests and examples: it passes
// the conformance suite but keeps nothing across processes. Its clock is
// time.Now, so that it follows testing/synctest's fake clock. It is safe
// for concurrent use; the zero value is not, use [NewMemStore].
type MemStore struct {
	mu sync.Mutex
	m  map[string]saga.Instance
}

var _ saga.Store = (*MemStore)(nil)

// NewMemStore returns an empty store.
func NewMemStore() *MemStore { return &MemStore{m: make(map[string]saga.Instance)} }

// clone returns a copy of inst sharing no memory with it.
func clone(inst saga.Instance) saga.Instance {
	inst.Input = slices.Clone(inst.Input)
	inst.Data = slices.Clone(inst.Data)
	inst.Steps = slices.Clone(inst.Steps)
	return inst
}

// Create implements [saga.Store].
func (s *MemStore) Create(ctx context.Context, inst saga.Instance, lease time.Duration) (saga.Instance, bool, error) {
	if err := ctx.Err(); err != nil {
		return saga.Instance{}, false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.m[inst.ID]; ok {
		return clone(old), false, nil
	}
	now := time.Now().UTC()
	inst = clone(inst)
	inst.Version, inst.CreatedAt, inst.UpdatedAt, inst.LeaseExpires = 1, now, now, now.Add(lease)
	s.m[inst.ID] = inst
	return clone(inst), true, nil
}

// Get implements [saga.Store].
func (s *MemStore) Get(ctx context.Context, id string) (saga.Instance, error) {
	if err := ctx.Err(); err != nil {
		return saga.Instance{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	inst, ok := s.m[id]
	if !ok {
		return saga.Instance{}, saga.ErrNotFound
	}
	return clone(inst), nil
}

// Update implements [saga.Store].
func (s *MemStore) Update(ctx context.Context, inst saga.Instance, lease time.Duration) (saga.Instance, error) {
	if err := ctx.Err(); err != nil {
		return saga.Instance{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.m[inst.ID]
	now := time.Now().UTC()
	if !ok || old.Version != inst.Version || old.Owner != inst.Owner || !now.Before(old.LeaseExpires) {
		return saga.Instance{}, saga.ErrLeaseLost
	}
	old.Status, old.Data, old.Steps, old.Error = inst.Status, slices.Clone(inst.Data), slices.Clone(inst.Steps), inst.Error
	old.Version++
	old.UpdatedAt, old.LeaseExpires = now, now.Add(lease)
	s.m[inst.ID] = old
	return clone(old), nil
}

// Renew implements [saga.Store].
func (s *MemStore) Renew(ctx context.Context, id, owner string, lease time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	inst, ok := s.m[id]
	now := time.Now().UTC()
	if !ok || inst.Owner != owner || !now.Before(inst.LeaseExpires) {
		return saga.ErrLeaseLost
	}
	inst.LeaseExpires = now.Add(lease)
	s.m[id] = inst
	return nil
}

// Claim implements [saga.Store].
func (s *MemStore) Claim(ctx context.Context, owner string, definitions []string, lease time.Duration, limit int) ([]saga.Instance, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now().UTC()
	var ids []string
	for id, inst := range s.m {
		if !inst.Status.Final() && slices.Contains(definitions, inst.Definition) && !now.Before(inst.LeaseExpires) {
			ids = append(ids, id)
		}
	}
	sort.Slice(ids, func(i, j int) bool { return s.m[ids[i]].LeaseExpires.Before(s.m[ids[j]].LeaseExpires) })
	var out []saga.Instance
	for _, id := range ids[:min(len(ids), max(limit, 0))] {
		inst := s.m[id]
		inst.Owner, inst.LeaseExpires, inst.UpdatedAt = owner, now.Add(lease), now
		inst.Version++
		s.m[id] = inst
		out = append(out, clone(inst))
	}
	return out, nil
}
