// Command netd is breakfix's CNI daemon for kind nodes: the part of kindnetd a
// test cluster needs, with no dependency beyond the Go standard library (the
// kindnetd sources are not on the Go module proxy this project can reach).
//
// Run as a privileged hostNetwork DaemonSet, on every node it
//   - writes /etc/cni/net.d/10-breakfix.conflist: ptp + host-local IPAM over the
//     node's spec.podCIDR, plus portmap (the same plugin chain as kindnet);
//   - keeps one route per other node: its podCIDR via its InternalIP, tagged
//     with routing protocol 211 so stale routes of deleted nodes are removed;
//   - masquerades pod traffic leaving the pod network (POD_SUBNET);
//   - enables net.ipv4.ip_forward.
//
// Nodes are followed with a list+watch on the API server and resynced every
// 30 s (so a fault that flushes routes or rules is repaired).
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"
)

const (
	saDir        = "/var/run/secrets/kubernetes.io/serviceaccount"
	routeProto   = "211"
	resyncPeriod = 30 * time.Second
	masqComment  = "breakfix-netd: masquerade pod traffic leaving the pod network"
)

type config struct {
	nodeName  string
	podSubnet *net.IPNet
	cniDir    string
	server    string
}

type node struct {
	Metadata struct {
		Name string `json:"name"`
	} `json:"metadata"`
	Spec struct {
		PodCIDR  string   `json:"podCIDR"`
		PodCIDRs []string `json:"podCIDRs"`
	} `json:"spec"`
	Status struct {
		Addresses []struct {
			Type    string `json:"type"`
			Address string `json:"address"`
		} `json:"addresses"`
	} `json:"status"`
}

type nodeList struct {
	Metadata struct {
		ResourceVersion string `json:"resourceVersion"`
	} `json:"metadata"`
	Items []node `json:"items"`
}

// podCIDR4 returns the node's IPv4 pod CIDR, or "".
func (n *node) podCIDR4() string {
	cidrs := n.Spec.PodCIDRs
	if len(cidrs) == 0 && n.Spec.PodCIDR != "" {
		cidrs = []string{n.Spec.PodCIDR}
	}
	for _, c := range cidrs {
		if ip, _, err := net.ParseCIDR(c); err == nil && ip.To4() != nil {
			return c
		}
	}
	return ""
}

// internalIP4 returns the node's IPv4 InternalIP, or "".
func (n *node) internalIP4() string {
	for _, a := range n.Status.Addresses {
		if ip := net.ParseIP(a.Address); a.Type == "InternalIP" && ip != nil && ip.To4() != nil {
			return a.Address
		}
	}
	return ""
}

type client struct {
	http   *http.Client
	server string
}

func newClient(server string) (*client, error) {
	ca, err := os.ReadFile(filepath.Join(saDir, "ca.crt"))
	if err != nil {
		return nil, fmt.Errorf("reading service account CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return nil, errors.New("service account ca.crt holds no certificate")
	}
	tr := &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout: 5 * time.Second,
	}
	return &client{http: &http.Client{Transport: tr}, server: server}, nil
}

func (c *client) get(ctx context.Context, path string, q url.Values) (*http.Response, error) {
	token, err := os.ReadFile(filepath.Join(saDir, "token")) // re-read: tokens rotate
	if err != nil {
		return nil, fmt.Errorf("reading service account token: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.server+path+"?"+q.Encode(), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		body, _ := bufio.NewReader(resp.Body).Peek(512)
		resp.Body.Close()
		return nil, fmt.Errorf("GET %s: %s: %s", path, resp.Status, bytes.TrimSpace(body))
	}
	return resp, nil
}

func (c *client) listNodes(ctx context.Context) (*nodeList, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	resp, err := c.get(ctx, "/api/v1/nodes", url.Values{})
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var l nodeList
	if err := json.NewDecoder(resp.Body).Decode(&l); err != nil {
		return nil, fmt.Errorf("decoding node list: %w", err)
	}
	return &l, nil
}

// watchNodes blocks until a node event arrives (returns nil), the watch ends
// or fails, or ctx is done.
func (c *client) watchNodes(ctx context.Context, rv string) error {
	q := url.Values{"watch": {"1"}, "resourceVersion": {rv}, "timeoutSeconds": {"25"}, "allowWatchBookmarks": {"false"}}
	resp, err := c.get(ctx, "/api/v1/nodes", q)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var ev struct {
		Type string `json:"type"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&ev); err != nil {
		return fmt.Errorf("watch ended: %w", err)
	}
	if ev.Type == "ERROR" {
		return errors.New("watch returned an ERROR event (resource version too old?)")
	}
	return nil
}

func run(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return string(out), nil
}

// writeCNIConfig writes the conflist for podCIDR when its content changed.
func writeCNIConfig(dir, podCIDR string) (bool, error) {
	mtu := 1500
	if out, err := run("ip", "-o", "route", "get", "1.1.1.1"); err == nil {
		f := strings.Fields(out)
		for i := 0; i+1 < len(f); i++ {
			if f[i] == "dev" {
				if b, err := os.ReadFile("/sys/class/net/" + f[i+1] + "/mtu"); err == nil {
					fmt.Sscanf(strings.TrimSpace(string(b)), "%d", &mtu)
				}
				break
			}
		}
	}
	conf := map[string]any{
		"cniVersion": "0.4.0",
		"name":       "breakfix",
		"plugins": []any{
			map[string]any{
				"type":   "ptp",
				"ipMasq": false,
				"mtu":    mtu,
				"ipam": map[string]any{
					"type":    "host-local",
					"dataDir": "/run/cni-ipam-state",
					"routes":  []any{map[string]any{"dst": "0.0.0.0/0"}},
					"ranges":  []any{[]any{map[string]any{"subnet": podCIDR}}},
				},
			},
			map[string]any{"type": "portmap", "capabilities": map[string]any{"portMappings": true}},
		},
	}
	data, err := json.MarshalIndent(conf, "", "  ")
	if err != nil {
		return false, err
	}
	data = append(data, '\n')
	path := filepath.Join(dir, "10-breakfix.conflist")
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
		return false, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return false, err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return false, err
	}
	return true, os.Rename(tmp, path)
}

// syncRoutes makes the proto-211 routes equal to want (cidr -> gateway).
func syncRoutes(want map[string]string) error {
	var errs []error
	keys := make([]string, 0, len(want))
	for k := range want {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, cidr := range keys {
		if _, err := run("ip", "route", "replace", cidr, "via", want[cidr], "proto", routeProto); err != nil {
			errs = append(errs, err)
		}
	}
	out, err := run("ip", "-4", "route", "show", "proto", routeProto)
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if _, ok := want[f[0]]; !ok {
			log.Printf("removing stale route %s", line)
			if _, err := run("ip", "route", "del", f[0], "proto", routeProto); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

func ensureMasquerade(podSubnet string) error {
	rule := []string{"-s", podSubnet, "!", "-d", podSubnet, "-m", "addrtype", "!", "--dst-type", "LOCAL",
		"-m", "comment", "--comment", masqComment, "-j", "MASQUERADE"}
	if _, err := run("iptables", append([]string{"-w", "5", "-t", "nat", "-C", "POSTROUTING"}, rule...)...); err == nil {
		return nil
	}
	log.Printf("adding masquerade rule for %s", podSubnet)
	_, err := run("iptables", append([]string{"-w", "5", "-t", "nat", "-A", "POSTROUTING"}, rule...)...)
	return err
}

func ensureForwarding() error {
	const p = "/proc/sys/net/ipv4/ip_forward"
	if b, err := os.ReadFile(p); err == nil && strings.TrimSpace(string(b)) == "1" {
		return nil
	}
	return os.WriteFile(p, []byte("1\n"), 0o644)
}

type state struct {
	cfg     config
	cni     string
	routes  string
	lastErr string
}

func (s *state) reconcile(nodes []node) error {
	var own *node
	want := map[string]string{}
	for i := range nodes {
		n := &nodes[i]
		if n.Metadata.Name == s.cfg.nodeName {
			own = n
			continue
		}
		cidr, ip := n.podCIDR4(), n.internalIP4()
		if cidr != "" && ip != "" {
			want[cidr] = ip
		}
	}
	if own == nil {
		return fmt.Errorf("node %q not found", s.cfg.nodeName)
	}
	var errs []error
	if err := ensureForwarding(); err != nil {
		errs = append(errs, fmt.Errorf("enabling ip_forward: %w", err))
	}
	if err := ensureMasquerade(s.cfg.podSubnet.String()); err != nil {
		errs = append(errs, err)
	}
	if err := syncRoutes(want); err != nil {
		errs = append(errs, err)
	} else if r := fmt.Sprint(want); r != s.routes {
		log.Printf("routes: %v", want)
		s.routes = r
	}
	if cidr := own.podCIDR4(); cidr == "" {
		errs = append(errs, fmt.Errorf("node %q has no IPv4 podCIDR yet", s.cfg.nodeName))
	} else if changed, err := writeCNIConfig(s.cfg.cniDir, cidr); err != nil {
		errs = append(errs, fmt.Errorf("writing CNI config: %w", err))
	} else if changed || s.cni != cidr {
		log.Printf("CNI config written for pod CIDR %s", cidr)
		s.cni = cidr
	}
	return errors.Join(errs...)
}

func loadConfig() (config, error) {
	var c config
	c.nodeName = os.Getenv("NODE_NAME")
	if c.nodeName == "" {
		return c, errors.New("NODE_NAME is not set (use the downward API: spec.nodeName)")
	}
	subnet := os.Getenv("POD_SUBNET")
	if subnet == "" {
		subnet = "10.244.0.0/16"
	}
	// POD_SUBNET may list several (dual stack); take the IPv4 one.
	for _, s := range strings.Split(subnet, ",") {
		if ip, n, err := net.ParseCIDR(strings.TrimSpace(s)); err == nil && ip.To4() != nil {
			c.podSubnet = n
		}
	}
	if c.podSubnet == nil {
		return c, fmt.Errorf("POD_SUBNET %q has no IPv4 CIDR", subnet)
	}
	c.cniDir = os.Getenv("CNI_CONF_DIR")
	if c.cniDir == "" {
		c.cniDir = "/etc/cni/net.d"
	}
	// Prefer the control plane endpoint kind patches in: it works before
	// kube-proxy has programmed the service VIP.
	if ep := os.Getenv("CONTROL_PLANE_ENDPOINT"); ep != "" {
		c.server = "https://" + ep
	} else if h, p := os.Getenv("KUBERNETES_SERVICE_HOST"), os.Getenv("KUBERNETES_SERVICE_PORT"); h != "" && p != "" {
		c.server = "https://" + net.JoinHostPort(h, p)
	} else {
		return c, errors.New("no API server: set CONTROL_PLANE_ENDPOINT or run in a pod")
	}
	return c, nil
}

func main() {
	log.SetFlags(log.LstdFlags | log.Lmsgprefix)
	log.SetPrefix("netd: ")
	cfg, err := loadConfig()
	if err != nil {
		log.Fatal(err)
	}
	cl, err := newClient(cfg.server)
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	log.Printf("node %s, pod subnet %s, API server %s", cfg.nodeName, cfg.podSubnet, cfg.server)

	s := &state{cfg: cfg}
	backoff := time.Second
	for ctx.Err() == nil {
		l, err := cl.listNodes(ctx)
		if err == nil {
			err = s.reconcile(l.Items)
		}
		if err != nil {
			if msg := err.Error(); msg != s.lastErr {
				log.Printf("sync: %v", err)
				s.lastErr = msg
			}
			select {
			case <-ctx.Done():
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 10*time.Second)
			continue
		}
		s.lastErr, backoff = "", time.Second
		// Wait for a node change, or resync after resyncPeriod.
		wctx, cancel := context.WithTimeout(ctx, resyncPeriod)
		if werr := cl.watchNodes(wctx, l.Metadata.ResourceVersion); werr != nil && wctx.Err() == nil && ctx.Err() == nil {
			// a failed/ended watch: short pause, then relist
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
		cancel()
	}
	log.Print("stopping")
}
