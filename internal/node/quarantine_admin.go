package node

import (
	"net/http"

	"github.com/cairnstore/cairn/api"
	"github.com/cairnstore/cairn/internal/fault"
)

// quarantineList serves GET /v1/admin/quarantine: every row, without the
// damaged bytes; with backend, tenant and key all given, only that key's
// rows, with their bytes. It reads the whole table: rows exist only for
// objects found damaged, so it stays small unless a backend is rotting,
// which is what an operator is here to see.
func (n *Node) quarantineList(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	be, tenant, key := q.Get("backend"), q.Get("tenant"), q.Get("key")
	one := be != "" || tenant != "" || key != ""
	if one && (be == "" || tenant == "" || key == "") {
		adminError(w, r, http.StatusBadRequest, "invalid", "give backend, tenant and key together (one key's rows, with their bytes), or none (every row)")
		return
	}
	rows := n.store.Quarantine(r.Context())
	if one {
		rows = n.store.QuarantineOf(r.Context(), be, tenant, key)
	}
	out := api.QuarantineList{Rows: []api.QuarantineRow{}}
	for rec, err := range rows {
		if fault.ClassOf(err) == fault.Invalid {
			adminError(w, r, http.StatusBadRequest, "invalid", fault.MessageOf(err))
			return
		}
		if err != nil {
			adminError(w, r, http.StatusInternalServerError, "internal", "reading the quarantine: "+err.Error())
			return
		}
		out.Rows = append(out.Rows, api.QuarantineRow{Backend: rec.Backend, Tenant: rec.Tenant, Key: rec.Key,
			ETag: rec.ETag, Time: rec.Time, Reason: rec.Reason, Size: rec.Size, Raw: rec.Raw})
	}
	writeJSON(w, http.StatusOK, out)
}
