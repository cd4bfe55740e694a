package api

import (
	"net/http"

	"github.com/google/uuid"

	"github.com/trailproof/trailproof/internal/core"
)

// IntegrationList is the answer of GET /v1/integrations.
type IntegrationList struct {
	Integrations []*core.Integration `json:"integrations"`
}

func (h *Handler) createIntegration(w http.ResponseWriter, r *http.Request) error {
	body, err := h.readJSON(w, r, "the integration settings", false)
	if err != nil {
		return err
	}
	in, err := core.ParseIntegration(body)
	if err != nil {
		return err
	}
	for field, s := range secretFields(in) {
		if s.Reveal() == core.Redacted {
			return core.FieldError(field, "holds the redaction marker %s, not a secret: send the real value", core.Redacted)
		}
	}
	if err := h.cfg.Policy.CheckIntegration(in); err != nil {
		return err
	}
	if in.ID == "" {
		in.ID = uuid.NewString()
	}
	now := h.cfg.Now().UTC()
	in.CreatedAt, in.UpdatedAt = now, now
	if err := h.cfg.Store.CreateIntegration(r.Context(), in); err != nil {
		return err
	}
	h.log.InfoContext(r.Context(), "integration created", "integration", in.ID, "type", in.Type, "region", in.AWSRegion)
	w.Header().Set("Location", "/v1/integrations/"+in.ID)
	writeJSON(w, http.StatusCreated, in.Redact())
	return nil
}

func (h *Handler) listIntegrations(w http.ResponseWriter, r *http.Request) error {
	list, err := h.cfg.Store.ListIntegrations(r.Context())
	if err != nil {
		return err
	}
	out := IntegrationList{Integrations: make([]*core.Integration, 0, len(list))}
	for _, in := range list {
		out.Integrations = append(out.Integrations, in.Redact())
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (h *Handler) getIntegration(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "the integration")
	if err != nil {
		return err
	}
	in, err := h.cfg.Store.GetIntegration(r.Context(), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, in.Redact())
	return nil
}

func (h *Handler) putIntegration(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "the integration")
	if err != nil {
		return err
	}
	body, err := h.readJSON(w, r, "the integration settings", false)
	if err != nil {
		return err
	}
	in, err := h.svc.UpdateIntegration(r.Context(), id, body, h.cfg.Policy.CheckIntegration)
	if err != nil {
		return err
	}
	h.log.InfoContext(r.Context(), "integration updated", "integration", in.ID, "type", in.Type, "region", in.AWSRegion)
	writeJSON(w, http.StatusOK, in.Redact())
	return nil
}

func (h *Handler) deleteIntegration(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "the integration")
	if err != nil {
		return err
	}
	if err := h.svc.DeleteIntegration(r.Context(), id); err != nil {
		return err
	}
	h.log.InfoContext(r.Context(), "integration deleted", "integration", id)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h *Handler) testIntegration(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "the integration")
	if err != nil {
		return err
	}
	if _, err := h.readJSON(w, r, "nothing", true); err != nil {
		return err
	}
	in, err := h.cfg.Store.GetIntegration(r.Context(), id)
	if err != nil {
		return err
	}
	rep := h.cfg.Tester.Test(r.Context(), in)
	writeJSON(w, http.StatusOK, rep)
	return nil
}

// SensorList is the answer of GET /v1/integrations/{id}/sensors.
type SensorList struct {
	IntegrationID string        `json:"integrationId"`
	Sensors       []core.Sensor `json:"sensors"`
}

// listSensors answers the network devices the integration's runs have seen (one per account and
// region, with discoverNetworkDevices), for the Director's device inventory.
func (h *Handler) listSensors(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "the integration")
	if err != nil {
		return err
	}
	if _, err := h.cfg.Store.GetIntegration(r.Context(), id); err != nil {
		return err
	}
	list, err := h.cfg.Store.ListSensors(r.Context(), id)
	if err != nil {
		return err
	}
	if list == nil {
		list = []core.Sensor{}
	}
	writeJSON(w, http.StatusOK, SensorList{IntegrationID: id, Sensors: list})
	return nil
}

// secretFields names the secrets of in as the settings document does.
func secretFields(in *core.Integration) map[string]core.Secret {
	return map[string]core.Secret{
		"secretAccessKey": in.SecretAccessKey, "sessionToken": in.SessionToken, "externalId": in.ExternalID,
	}
}
