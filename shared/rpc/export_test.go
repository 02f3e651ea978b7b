package rpc

// Replicas returns the balancer's replicas as scheme://host:port, in turn order.
func (b *Balancer) Replicas() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, ep := range b.endpoints {
		out = append(out, ep.scheme+"://"+ep.addr)
	}
	return out
}

// Ejected returns the replicas ejected now, as Replicas does.
func (b *Balancer) Ejected() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, ep := range b.endpoints {
		if ep.failures > 0 {
			out = append(out, ep.scheme+"://"+ep.addr)
		}
	}
	return out
}
