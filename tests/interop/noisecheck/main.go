// Command noisecheck is a tiny ts2021 server built from Tailscale's own
// controlbase/controlhttpserver packages. weft's Rust tests start it to prove
// that their Noise handshake, record framing and HTTP upgrade interoperate with
// the real Go implementation, not just with a Rust responder that could share
// the same mistakes.
//
// It listens on 127.0.0.1 (random port), prints one JSON line
// {"addr":"127.0.0.1:PORT","public_key":"mkey:..."} and then serves:
//
//	/key     the OverTLSPublicKeyResponse JSON for the random server key
//	/ts2021  the Noise upgrade; every byte received afterwards is echoed back
//
// It exits when stdin is closed, so a crashed test never leaves it running.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"

	"tailscale.com/control/controlhttp/controlhttpserver"
	"tailscale.com/tailcfg"
	"tailscale.com/types/key"
)

func main() {
	serverKey := key.NewMachine()
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}

	mux := http.NewServeMux()
	mux.HandleFunc("/key", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(tailcfg.OverTLSPublicKeyResponse{PublicKey: serverKey.Public()})
	})
	mux.HandleFunc("/ts2021", func(w http.ResponseWriter, r *http.Request) {
		conn, err := controlhttpserver.AcceptHTTP(r.Context(), w, r, serverKey, nil)
		if err != nil {
			log.Printf("noisecheck: upgrade failed: %v", err)
			return
		}
		defer conn.Close()
		io.Copy(conn, conn)
	})

	ready, _ := json.Marshal(map[string]string{
		"addr":       listener.Addr().String(),
		"public_key": serverKey.Public().String(),
	})
	fmt.Println(string(ready))

	go func() {
		io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	}()
	log.Fatal(http.Serve(listener, mux))
}
