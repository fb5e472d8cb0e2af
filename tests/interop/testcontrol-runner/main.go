// Command testcontrol-runner runs Tailscale's in-memory test control server
// (tailscale.com/tstest/integration/testcontrol) together with an in-process
// DERP server and STUN server, all bound to one explicit IP address, so that
// real tailscaled processes (and weft) living in other network namespaces can
// register against it.
//
// It is part of weft's interop harness (tests/interop). Nothing here talks to
// the outside world: every listener binds to the --listen IP, and the DERP map
// handed to clients only names that IP.
//
// Process model: the runner re-executes itself as a child. testcontrol
// reports many protocol errors with `go panic(...)` in a fresh goroutine,
// which no recover() can catch. The runner therefore (1) refuses, with a
// logged 404/400, the inputs known to trigger those panics, outside and
// inside the Noise channel, and (2) supervises the child: if it dies anyway,
// the parent prints a clear banner naming the panic and exits with status 70.
// Synchronous handler panics are recovered in-process and logged.
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"reflect"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"tailscale.com/derp/derpserver"
	"tailscale.com/net/stunserver"
	"tailscale.com/tailcfg"
	"tailscale.com/tstest/integration/testcontrol"
	"tailscale.com/types/key"
	"tailscale.com/util/set"
)

const childEnv = "WEFT_TESTCONTROL_RUNNER_CHILD"

var (
	flagListen    = flag.String("listen", "127.0.0.1:9911", "control HTTP listen address ip:port (explicit IP required; port 0 = random)")
	flagDERPPort  = flag.Int("derp-port", 0, "DERP port on the --listen IP (0 = random)")
	flagDERPTLS   = flag.Bool("derp-tls", true, "serve DERP over TLS with a self-signed cert; false = plain HTTP (clients need TS_DEBUG_USE_DERP_HTTP=1)")
	flagDERPPin   = flag.Bool("derp-pin", false, "advertise the DERP cert as CertName \"sha256-raw:<hex>\" instead of InsecureForTests")
	flagSTUNPort  = flag.Int("stun-port", 0, "STUN UDP port on the --listen IP (0 = random)")
	flagAuthKey   = flag.String("authkey", "", "if set, every registration must carry exactly this auth key (testcontrol RequireAuthKey)")
	flagSameUser  = flag.Bool("same-user", true, "put all nodes under one user (testcontrol AllNodesSameUser)")
	flagAllOnline = flag.Bool("all-online", true, "mark every peer Online=true in netmaps (testcontrol AllOnline)")
	flagVerbose   = flag.Bool("verbose", false, "testcontrol Verbose: dump register requests")
	flagReadyFile = flag.String("ready-file", "", "also write the ready JSON line to this file")
)

func main() {
	flag.Parse()
	if os.Getenv(childEnv) != "1" {
		os.Exit(supervise())
	}
	log.SetPrefix("testcontrol-runner: ")
	log.SetFlags(log.Ltime | log.Lmicroseconds)
	if err := run(); err != nil {
		log.Printf("FATAL: %v", err)
		os.Exit(1)
	}
}

// supervise re-runs this binary as a child, copies its stdout and stderr,
// forwards SIGINT/SIGTERM, and explains loudly if the child crashed.
func supervise() int {
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintf(os.Stderr, "testcontrol-runner: os.Executable: %v\n", err)
		return 1
	}
	cmd := exec.Command(exe, os.Args[1:]...)
	cmd.Env = append(os.Environ(), childEnv+"=1")
	cmd.Stdout = os.Stdout
	stderr, err := cmd.StderrPipe()
	if err != nil {
		fmt.Fprintf(os.Stderr, "testcontrol-runner: %v\n", err)
		return 1
	}
	// The child dies with us even if we are SIGKILLed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(os.Stderr, "testcontrol-runner: start child: %v\n", err)
		return 1
	}

	var stopped atomic.Bool
	sigc := make(chan os.Signal, 2)
	signal.Notify(sigc, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		for s := range sigc {
			stopped.Store(true)
			cmd.Process.Signal(s)
		}
	}()

	// Copy stderr line by line, remembering the panic text if any.
	var panicLines []string
	inPanic := false
	sc := bufio.NewScanner(stderr)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		line := sc.Text()
		fmt.Fprintln(os.Stderr, line)
		if strings.HasPrefix(line, "panic: ") || strings.HasPrefix(line, "fatal error: ") {
			inPanic = true
		}
		if inPanic && len(panicLines) < 40 {
			panicLines = append(panicLines, line)
		}
	}
	err = cmd.Wait()
	code := 0
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else {
			code = 1
		}
	}
	if stopped.Load() && len(panicLines) == 0 {
		return 0
	}
	if code != 0 || len(panicLines) > 0 {
		fmt.Fprintln(os.Stderr, "==================================================================")
		fmt.Fprintf(os.Stderr, "testcontrol-runner: CONTROL SERVER CRASHED (child %v)\n", err)
		if len(panicLines) > 0 {
			fmt.Fprintln(os.Stderr, "testcontrol-runner: testcontrol panics on input it does not expect (unknown")
			fmt.Fprintln(os.Stderr, "testcontrol-runner: path, undecodable JSON, zero Version/NodeKey, ...). Panic:")
			for _, l := range panicLines {
				fmt.Fprintln(os.Stderr, "testcontrol-runner: | "+l)
			}
		}
		fmt.Fprintln(os.Stderr, "==================================================================")
		return 70
	}
	return 0
}

type ready struct {
	ControlURL string           `json:"control_url"`
	AdminURL   string           `json:"admin_url"`
	DERPURL    string           `json:"derp_url"`
	STUNAddr   string           `json:"stun_addr"`
	AuthKey    string           `json:"authkey,omitempty"`
	CertSHA256 string           `json:"derp_cert_sha256,omitempty"`
	DERPMap    *tailcfg.DERPMap `json:"derpmap"`
}

func run() error {
	ap, err := netip.ParseAddrPort(*flagListen)
	if err != nil {
		return fmt.Errorf("--listen must be ip:port: %w", err)
	}
	ip := ap.Addr()
	if ip.IsUnspecified() {
		return errors.New("--listen needs an explicit IP (refusing to bind all interfaces)")
	}
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer cancel()

	// STUN.
	ss := stunserver.New(ctx)
	if err := ss.Listen(net.JoinHostPort(ip.String(), strconv.Itoa(*flagSTUNPort))); err != nil {
		return fmt.Errorf("stun listen: %w", err)
	}
	go ss.Serve()
	stunPort := ss.LocalAddr().(*net.UDPAddr).Port

	// DERP.
	d := derpserver.New(key.NewNode(), log.Printf)
	defer d.Close()
	derpMux := http.NewServeMux()
	derpMux.Handle("/derp", derpserver.AddWebSocketSupport(d, derpserver.Handler(d)))
	derpMux.HandleFunc("/derp/probe", derpserver.ProbeHandler)
	derpMux.HandleFunc("/derp/latency-check", derpserver.ProbeHandler)
	derpMux.HandleFunc("/generate_204", derpserver.ServeNoContent)
	derpMux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		log.Printf("derp: unexpected %s %s from %s", r.Method, r.URL, r.RemoteAddr)
		http.NotFound(w, r)
	})
	derpLn, err := net.Listen("tcp", net.JoinHostPort(ip.String(), strconv.Itoa(*flagDERPPort)))
	if err != nil {
		return fmt.Errorf("derp listen: %w", err)
	}
	derpSrv := &http.Server{
		Handler:  logRequests("derp", derpMux),
		ErrorLog: log.Default(),
		// DERP is an HTTP/1.1 Upgrade: never negotiate h2.
		TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){},
	}
	derpScheme := "http"
	var certHash string
	if *flagDERPTLS {
		cert, sum, err := selfSignedCert(ip)
		if err != nil {
			return err
		}
		certHash = sum
		derpSrv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"http/1.1"}}
		derpScheme = "https"
		go func() { log.Printf("derp server exited: %v", derpSrv.ServeTLS(derpLn, "", "")) }()
	} else {
		go func() { log.Printf("derp server exited: %v", derpSrv.Serve(derpLn)) }()
	}
	derpPort := derpLn.Addr().(*net.TCPAddr).Port

	node := &tailcfg.DERPNode{
		Name:       "1a",
		RegionID:   1,
		HostName:   ip.String(),
		IPv4:       ip.String(),
		IPv6:       "none",
		STUNPort:   stunPort,
		DERPPort:   derpPort,
		STUNTestIP: ip.String(),
	}
	if ip.Is6() {
		node.IPv4, node.IPv6 = "none", ip.String()
	}
	if *flagDERPTLS {
		if *flagDERPPin {
			node.CertName = "sha256-raw:" + certHash
		} else {
			node.InsecureForTests = true
		}
	}
	derpMap := &tailcfg.DERPMap{Regions: map[int]*tailcfg.DERPRegion{
		1: {RegionID: 1, RegionCode: "test", RegionName: "weft interop test DERP", Nodes: []*tailcfg.DERPNode{node}},
	}}

	// Control.
	ctlLn, err := net.Listen("tcp", ap.String())
	if err != nil {
		return fmt.Errorf("control listen: %w", err)
	}
	baseURL := "http://" + ctlLn.Addr().String()
	ctrl := &testcontrol.Server{
		Logf:             func(f string, a ...any) { log.Printf("testcontrol: "+f, a...) },
		DERPMap:          derpMap,
		RequireAuthKey:   *flagAuthKey,
		AllNodesSameUser: *flagSameUser,
		AllOnline:        *flagAllOnline,
		Verbose:          *flagVerbose,
		ExplicitBaseURL:  baseURL,
	}
	h := &harness{ctrl: ctrl}
	if err := h.guardInnerMux(); err != nil {
		// Still usable, just without per-request logs and input checks
		// inside the Noise channel.
		log.Printf("WARNING: %v", err)
		ctrl.SetOnMapRequest(func(k key.NodePublic) { log.Printf("noise: map request from %s", k.ShortString()) })
	}

	mux := http.NewServeMux()
	// Only paths testcontrol serves outside Noise. Anything else would hit
	// testcontrol's serveUnhandled, which panics the whole process.
	mux.Handle("/key", ctrl)
	mux.Handle("/ts2021", ctrl)
	mux.Handle("/generate_204", ctrl)
	mux.Handle("/c2n/", ctrl)
	mux.HandleFunc("/machine/", func(w http.ResponseWriter, r *http.Request) {
		log.Printf("REJECTED non-Noise %s %s (only ts2021/Noise is served)", r.Method, r.URL.Path)
		http.Error(w, "testcontrol-runner: /machine/ is only served inside the ts2021 Noise channel", http.StatusNotFound)
	})
	h.register(mux)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		log.Printf("REJECTED unknown path %s %s", r.Method, r.URL.Path)
		http.NotFound(w, r)
	})
	ctlSrv := &http.Server{Handler: logRequests("control", mux), ErrorLog: log.Default()}
	go func() {
		err := ctlSrv.Serve(ctlLn)
		if !errors.Is(err, http.ErrServerClosed) {
			log.Printf("control server exited: %v", err)
			cancel()
		}
	}()

	rd := ready{
		ControlURL: baseURL,
		AdminURL:   baseURL + "/harness/",
		DERPURL:    fmt.Sprintf("%s://%s/derp", derpScheme, derpLn.Addr()),
		STUNAddr:   net.JoinHostPort(ip.String(), strconv.Itoa(stunPort)),
		AuthKey:    *flagAuthKey,
		CertSHA256: certHash,
		DERPMap:    derpMap,
	}
	line, _ := json.Marshal(rd)
	if *flagReadyFile != "" {
		if err := os.WriteFile(*flagReadyFile+".tmp", append(line, '\n'), 0o644); err != nil {
			return err
		}
		if err := os.Rename(*flagReadyFile+".tmp", *flagReadyFile); err != nil {
			return err
		}
	}
	fmt.Printf("%s\n", line)
	log.Printf("ready: control %s, derp %s, stun %s, authkey required: %v", rd.ControlURL, rd.DERPURL, rd.STUNAddr, *flagAuthKey != "")

	<-ctx.Done()
	log.Printf("shutting down")
	sctx, scancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer scancel()
	ctlSrv.Shutdown(sctx)
	derpSrv.Close()
	return nil
}

// statusWriter records the status code; it forwards Hijack and Flush, which
// the Noise upgrade and the DERP upgrade need.
type statusWriter struct {
	http.ResponseWriter
	code     int
	hijacked bool
}

func (w *statusWriter) WriteHeader(c int) {
	if w.code == 0 {
		w.code = c
	}
	w.ResponseWriter.WriteHeader(c)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = 200
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *statusWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	hj, ok := w.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("hijack not supported")
	}
	w.hijacked = true
	return hj.Hijack()
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// logRequests logs every request (and the end of upgraded connections) and
// turns synchronous handler panics into a logged 500.
func logRequests(name string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		log.Printf("%s: <- %s %s from %s (upgrade=%q)", name, r.Method, r.URL.RequestURI(), r.RemoteAddr, r.Header.Get("Upgrade"))
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				log.Printf("%s: PANIC serving %s %s: %v\n%s", name, r.Method, r.URL.Path, p, debug.Stack())
				if !sw.hijacked && sw.code == 0 {
					http.Error(w, fmt.Sprintf("testcontrol-runner: handler panic: %v", p), 500)
				}
				return
			}
			what := strconv.Itoa(sw.code)
			if sw.hijacked {
				what = "upgraded connection closed"
			}
			log.Printf("%s: -> %s %s %s after %v", name, r.Method, r.URL.Path, what, time.Since(start).Round(time.Millisecond))
		}()
		next.ServeHTTP(sw, r)
	})
}

func selfSignedCert(ip netip.Addr) (tls.Certificate, string, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, "", err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: ip.String(), Organization: []string{"weft interop harness"}},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(7 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{ip.AsSlice()},
		DNSNames:     []string{ip.String()},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		return tls.Certificate{}, "", err
	}
	sum := sha256.Sum256(der)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: priv}, hex.EncodeToString(sum[:]), nil
}

// harness is the small admin API under /harness/.
type harness struct {
	ctrl *testcontrol.Server

	mu         sync.Mutex
	allExpired bool

	innerRequests atomic.Int64 // requests seen inside the Noise channel
	rejected      atomic.Int64 // requests refused instead of letting testcontrol panic
}

// guardInnerMux puts a logging and checking handler in front of
// testcontrol's own ServeMux, which is also the handler of the HTTP/2 server
// inside each Noise connection. testcontrol offers no hook there, so the
// unexported `mux` field is swapped by reflection (type-checked), before any
// listener is started.
//
// The guard logs every request, answers 404 to paths testcontrol does not
// serve and 400 to register/map bodies testcontrol would panic on (bad JSON,
// zero Version, zero NodeKey). A real control server answers such requests
// with an error too; /harness/stats counts them as "rejected".
func (h *harness) guardInnerMux() error {
	// Make testcontrol build its mux (sync.Once inside ServeHTTP).
	h.ctrl.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/generate_204", nil))
	f := reflect.ValueOf(h.ctrl).Elem().FieldByName("mux")
	if !f.IsValid() || f.Type() != reflect.TypeOf((*http.ServeMux)(nil)) {
		return errors.New("testcontrol.Server has no `mux *http.ServeMux` field at this version; Noise requests are not logged or checked")
	}
	p := (**http.ServeMux)(unsafe.Pointer(f.UnsafeAddr()))
	if *p == nil {
		return errors.New("testcontrol.Server mux not initialised")
	}
	orig := *p
	guarded := http.NewServeMux()
	guarded.Handle("/", h.innerGuard(orig))
	*p = guarded
	return nil
}

var (
	innerExact    = map[string]bool{"/key": true, "/ts2021": true, "/generate_204": true, "/machine/map": true, "/machine/register": true, "/machine/set-dns": true, "/machine/update-health": true}
	innerPrefixes = []string{"/c2n/", "/machine/tka/", "/machine/webclient/"}
)

func (h *harness) innerGuard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		noise := r.ProtoMajor == 2 // the HTTP/2 server inside a Noise connection
		if !noise {
			next.ServeHTTP(w, r)
			return
		}
		h.innerRequests.Add(1)
		reject := func(code int, format string, args ...any) {
			h.rejected.Add(1)
			msg := fmt.Sprintf(format, args...)
			log.Printf("noise: REJECTED %s %s: %s", r.Method, r.URL.Path, msg)
			http.Error(w, "testcontrol-runner: "+msg, code)
		}
		path := r.URL.Path
		known := innerExact[path]
		for _, pre := range innerPrefixes {
			known = known || strings.HasPrefix(path, pre)
		}
		if !known {
			reject(http.StatusNotFound, "path not served by testcontrol")
			return
		}
		desc := ""
		if r.Method == "POST" && (path == "/machine/register" || path == "/machine/map") {
			body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
			r.Body.Close()
			if err != nil {
				reject(http.StatusBadRequest, "reading body: %v", err)
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
			if path == "/machine/register" {
				var req tailcfg.RegisterRequest
				if err := json.Unmarshal(body, &req); err != nil {
					reject(http.StatusBadRequest, "RegisterRequest JSON: %v", err)
					return
				}
				if req.Version == 0 || req.NodeKey.IsZero() {
					reject(http.StatusBadRequest, "RegisterRequest needs Version and NodeKey (got Version=%d NodeKey=%v)", req.Version, req.NodeKey)
					return
				}
				hostname := ""
				if req.Hostinfo != nil {
					hostname = req.Hostinfo.Hostname
				}
				desc = fmt.Sprintf(" v=%d node=%s old=%v authkey=%v followup=%q hostname=%q",
					req.Version, req.NodeKey.ShortString(), !req.OldNodeKey.IsZero(),
					req.Auth != nil && req.Auth.AuthKey != "", req.Followup, hostname)
			} else {
				var req tailcfg.MapRequest
				if err := json.Unmarshal(body, &req); err != nil {
					reject(http.StatusBadRequest, "MapRequest JSON: %v", err)
					return
				}
				if req.Version == 0 || req.NodeKey.IsZero() {
					reject(http.StatusBadRequest, "MapRequest needs Version and NodeKey (got Version=%d NodeKey=%v)", req.Version, req.NodeKey)
					return
				}
				desc = fmt.Sprintf(" v=%d node=%s stream=%v omitPeers=%v readOnly=%v compress=%q endpoints=%d",
					req.Version, req.NodeKey.ShortString(), req.Stream, req.OmitPeers, req.ReadOnly, req.Compress, len(req.Endpoints))
			}
		}
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		log.Printf("noise: <- %s %s%s", r.Method, path, desc)
		next.ServeHTTP(sw, r)
		log.Printf("noise: -> %s %s %d after %v", r.Method, path, sw.code, time.Since(start).Round(time.Millisecond))
	})
}

type nodeSummary struct {
	ID        tailcfg.NodeID   `json:"id"`
	StableID  string           `json:"stable_id"`
	Name      string           `json:"name"`
	Hostname  string           `json:"hostname"`
	Key       string           `json:"key"`
	Machine   string           `json:"machine"`
	DiscoKey  string           `json:"disco_key"`
	Addresses []netip.Prefix   `json:"addresses"`
	Endpoints []netip.AddrPort `json:"endpoints"`
	HomeDERP  int              `json:"home_derp"`
	Expired   bool             `json:"expired"`
}

func summarize(n *tailcfg.Node) nodeSummary {
	s := nodeSummary{
		ID: n.ID, StableID: string(n.StableID), Name: n.Name,
		Key: n.Key.String(), Machine: n.Machine.String(), DiscoKey: n.DiscoKey.String(),
		Addresses: n.Addresses, Endpoints: n.Endpoints, HomeDERP: n.HomeDERP, Expired: n.Expired,
	}
	if n.Hostinfo.Valid() {
		s.Hostname = n.Hostinfo.Hostname()
	}
	return s
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

func (h *harness) register(mux *http.ServeMux) {
	mux.HandleFunc("GET /harness/healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })
	mux.HandleFunc("GET /harness/derpmap", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, h.ctrl.DERPMap) })
	mux.HandleFunc("GET /harness/nodes", func(w http.ResponseWriter, r *http.Request) {
		nodes := h.ctrl.AllNodes()
		if r.URL.Query().Get("full") != "" {
			writeJSON(w, nodes)
			return
		}
		out := []nodeSummary{}
		for _, n := range nodes {
			out = append(out, summarize(n))
		}
		writeJSON(w, out)
	})
	mux.HandleFunc("GET /harness/stats", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]int64{
			"nodes":          int64(h.ctrl.NumNodes()),
			"in_serve_map":   int64(h.ctrl.InServeMap()),
			"noise_requests": h.innerRequests.Load(),
			"rejected":       h.rejected.Load(),
		})
	})
	mux.HandleFunc("POST /harness/nodes/remove", h.serveRemove)
	mux.HandleFunc("POST /harness/expire-all", func(w http.ResponseWriter, r *http.Request) {
		v, err := strconv.ParseBool(r.URL.Query().Get("expired"))
		if err != nil {
			http.Error(w, "need ?expired=true|false", 400)
			return
		}
		h.mu.Lock()
		h.allExpired = v
		h.mu.Unlock()
		h.ctrl.SetExpireAllNodes(v)
		log.Printf("admin: SetExpireAllNodes(%v)", v)
		writeJSON(w, map[string]bool{"expired": v})
	})
	// Exercises the supervisor: crashes the control server the way
	// testcontrol does on bad input (a panic in a fresh goroutine).
	mux.HandleFunc("POST /harness/debug/crash", func(w http.ResponseWriter, r *http.Request) {
		log.Printf("admin: crashing on request")
		io.WriteString(w, "crashing\n")
		go panic("testcontrol-runner: crash requested via /harness/debug/crash")
	})
	mux.HandleFunc("POST /harness/fake-node", func(w http.ResponseWriter, r *http.Request) {
		h.ctrl.AddFakeNode()
		log.Printf("admin: AddFakeNode")
		writeJSON(w, map[string]int{"nodes": h.ctrl.NumNodes()})
	})
}

// findNode matches ?key=nodekey:..., ?id=N, ?name=hostname (Hostinfo) or
// ?name=<netmap name prefix>.
func (h *harness) findNode(r *http.Request) (*tailcfg.Node, error) {
	q := r.URL.Query()
	var match []*tailcfg.Node
	for _, n := range h.ctrl.AllNodes() {
		switch {
		case q.Get("key") != "" && n.Key.String() == q.Get("key"):
		case q.Get("id") != "" && strconv.FormatInt(int64(n.ID), 10) == q.Get("id"):
		case q.Get("name") != "" && ((n.Hostinfo.Valid() && n.Hostinfo.Hostname() == q.Get("name")) ||
			strings.TrimSuffix(n.Name, ".") == q.Get("name") || strings.HasPrefix(n.Name, q.Get("name")+".")):
		default:
			continue
		}
		match = append(match, n)
	}
	switch len(match) {
	case 1:
		return match[0], nil
	case 0:
		return nil, errors.New("no such node (use ?key=nodekey:..., ?id=N or ?name=HOSTNAME)")
	default:
		return nil, fmt.Errorf("%d nodes match", len(match))
	}
}

// serveRemove deletes a node from testcontrol's in-memory node table and
// pushes fresh full netmaps to everyone. testcontrol (at the pinned version)
// has no public removal API, so this reaches into its unexported `nodes` map
// and `mu` mutex by reflection; the field types are checked and the endpoint
// answers 501 if they ever change.
func (h *harness) serveRemove(w http.ResponseWriter, r *http.Request) {
	n, err := h.findNode(r)
	if err != nil {
		http.Error(w, err.Error(), 404)
		return
	}
	if err := removeNodeLocked(h.ctrl, n.Key); err != nil {
		log.Printf("admin: remove %v: %v", n.Key.ShortString(), err)
		http.Error(w, err.Error(), http.StatusNotImplemented)
		return
	}
	// Tell every remaining node with a streaming poll: a PeersRemoved delta.
	// A full netmap alone is not enough: when the removed node was the last
	// peer, testcontrol's full MapResponse has Peers == nil, which clients
	// read as "peers unchanged". AddRawMapResponse marks the node as
	// manual-responses-only forever, so lift that mark again afterwards.
	var told []string
	for _, p := range h.ctrl.AllNodes() {
		if h.ctrl.AddRawMapResponse(p.Key, &tailcfg.MapResponse{PeersRemoved: []tailcfg.NodeID{n.ID}}) {
			told = append(told, p.Key.ShortString())
		}
		if err := unsuppressAutoMapResponses(h.ctrl, p.Key); err != nil {
			log.Printf("admin: remove: %v", err)
		}
	}
	// Then an all-nodes update, which makes every streaming poll recompute a
	// full netmap from the node table; the removed node's own stream ends
	// because it is no longer found. SetExpireAllNodes with the unchanged
	// value is such an update with no other effect.
	h.mu.Lock()
	exp := h.allExpired
	h.mu.Unlock()
	h.ctrl.SetExpireAllNodes(exp)
	log.Printf("admin: PeersRemoved [%d] sent to %v", n.ID, told)
	log.Printf("admin: removed node id=%d %s (%s); full netmaps pushed", n.ID, n.Key.ShortString(), n.Name)
	writeJSON(w, map[string]any{"removed": summarize(n), "remaining": h.ctrl.NumNodes(),
		"note": "testcontrol numbers new nodes len(nodes)+1: a node registered after a removal may reuse an existing NodeID"})
}

// serverMutex returns testcontrol.Server's unexported mutex.
func serverMutex(s *testcontrol.Server) (*sync.Mutex, error) {
	muF := reflect.ValueOf(s).Elem().FieldByName("mu")
	if !muF.IsValid() || muF.Type() != reflect.TypeOf(sync.Mutex{}) {
		return nil, errors.New("testcontrol.Server has no `mu sync.Mutex` field at this version; node removal unsupported")
	}
	return (*sync.Mutex)(unsafe.Pointer(muF.UnsafeAddr())), nil
}

// unsuppressAutoMapResponses undoes the side effect of AddRawMapResponse
// that stops all automatic netmaps to k.
func unsuppressAutoMapResponses(s *testcontrol.Server, k key.NodePublic) error {
	mu, err := serverMutex(s)
	if err != nil {
		return err
	}
	f := reflect.ValueOf(s).Elem().FieldByName("suppressAutoMapResponses")
	if !f.IsValid() || f.Type() != reflect.TypeOf(set.Set[key.NodePublic](nil)) {
		return errors.New("testcontrol.Server has no `suppressAutoMapResponses set.Set[key.NodePublic]` field at this version")
	}
	m := (*set.Set[key.NodePublic])(unsafe.Pointer(f.UnsafeAddr()))
	mu.Lock()
	defer mu.Unlock()
	if *m != nil {
		m.Delete(k)
	}
	return nil
}

func removeNodeLocked(s *testcontrol.Server, k key.NodePublic) error {
	v := reflect.ValueOf(s).Elem()
	mu, err := serverMutex(s)
	if err != nil {
		return err
	}
	nodesF := v.FieldByName("nodes")
	if !nodesF.IsValid() || nodesF.Type() != reflect.TypeOf(map[key.NodePublic]*tailcfg.Node(nil)) {
		return errors.New("testcontrol.Server has no `nodes map[key.NodePublic]*tailcfg.Node` field at this version; node removal unsupported")
	}
	nodes := (*map[key.NodePublic]*tailcfg.Node)(unsafe.Pointer(nodesF.UnsafeAddr()))
	mu.Lock()
	defer mu.Unlock()
	if _, ok := (*nodes)[k]; !ok {
		return errors.New("node vanished")
	}
	delete(*nodes, k)
	return nil
}
