package compute_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/compute/armcompute/v7"

	"nimbus/internal/arm/armtest"
	"nimbus/internal/resource"
)

// TestRollingUpgrades drives the rolling-upgrade operations with the SDK:
// no upgrade yet (404), an OS upgrade reimages the instances whose image is
// not the model's and completes, cancel with nothing in progress (409), an
// extension upgrade, the OS upgrade history, approveRollingUpgrade.
func TestRollingUpgrades(t *testing.T) {
	e := armtest.NewEnv(t)
	ie := newInstEnv(t, e)
	ru, err := armcompute.NewVirtualMachineScaleSetRollingUpgradesClient(e.Sub, e.Cred, e.Options)
	if err != nil {
		t.Fatal(err)
	}
	_, err = ru.GetLatest(e.Ctx, "rg", "web", nil)
	armtest.WantCode(t, "latest before any upgrade", err, "NotFound")

	// Instance 1 runs an older image than the model.
	storeInstance(t, e.Node, "web", 1, func(in *resource.Instance) {
		in.Model.StorageProfile = &resource.StorageProfile{ImageReference: &resource.ImageReference{Publisher: "nimbus", Offer: "workloads", SKU: "script", Version: "latest"}}
	})
	gens := map[string]int64{}
	for _, id := range []string{"0", "1", "2"} {
		gens[id] = ie.record(t, id).Generation
	}
	p, err := ru.BeginStartOSUpgrade(e.Ctx, "rg", "web", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.PollUntilDone(e.Ctx, armtest.Poll); err != nil {
		t.Fatal(err)
	}
	if g := ie.record(t, "1").Generation; g <= gens["1"] {
		t.Errorf("instance 1 (old image) not reimaged: generation %d", g)
	}
	if img := ie.record(t, "1").Model.StorageProfile.ImageReference; img.SKU != "echo" {
		t.Errorf("instance 1 runs %+v after the OS upgrade", img)
	}
	for _, id := range []string{"0", "2"} {
		if g := ie.record(t, id).Generation; g != gens[id] {
			t.Errorf("instance %s (already on the image) was reimaged", id)
		}
	}
	latest, err := ru.GetLatest(e.Ctx, "rg", "web", nil)
	if err != nil {
		t.Fatal(err)
	}
	rs := latest.Properties.RunningStatus
	if *rs.Code != armcompute.RollingUpgradeStatusCodeCompleted || *rs.LastAction != armcompute.RollingUpgradeActionTypeStart || rs.StartTime == nil {
		t.Errorf("latest running status %+v", rs)
	}
	if pr := latest.Properties.Progress; *pr.SuccessfulInstanceCount != 1 || *pr.FailedInstanceCount+*pr.InProgressInstanceCount+*pr.PendingInstanceCount != 0 {
		t.Errorf("progress %+v; want the one instance upgraded", pr)
	}
	_, err = ru.BeginCancel(e.Ctx, "rg", "web", nil)
	armtest.WantCode(t, "cancel with nothing in progress", err, "OperationNotAllowed")

	pe, err := ru.BeginStartExtensionUpgrade(e.Ctx, "rg", "web", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pe.PollUntilDone(e.Ctx, armtest.Poll); err != nil {
		t.Fatal(err)
	}
	pager := e.VMSS.NewGetOSUpgradeHistoryPager("rg", "web", nil)
	var hist []*armcompute.UpgradeOperationHistoricalStatusInfo
	for pager.More() {
		page, err := pager.NextPage(e.Ctx)
		if err != nil {
			t.Fatal(err)
		}
		hist = append(hist, page.Value...)
	}
	if len(hist) != 1 || *hist[0].Properties.RunningStatus.Code != armcompute.UpgradeStateCompleted || *hist[0].Properties.StartedBy != armcompute.UpgradeOperationInvokerUser ||
		*hist[0].Properties.TargetImageReference.SKU != "echo" {
		t.Errorf("OS upgrade history %+v", hist)
	}
	pa, err := e.VMSS.BeginApproveRollingUpgrade(e.Ctx, "rg", "web", &armcompute.VirtualMachineScaleSetsClientBeginApproveRollingUpgradeOptions{
		VMInstanceIDs: &armcompute.VirtualMachineScaleSetVMInstanceIDs{InstanceIDs: []*string{to.Ptr("0")}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pa.PollUntilDone(e.Ctx, armtest.Poll); err != nil {
		t.Fatal(err)
	}
	_, err = e.VMSS.BeginApproveRollingUpgrade(e.Ctx, "rg", "web", &armcompute.VirtualMachineScaleSetsClientBeginApproveRollingUpgradeOptions{
		VMInstanceIDs: &armcompute.VirtualMachineScaleSetVMInstanceIDs{InstanceIDs: []*string{to.Ptr("42")}}})
	armtest.WantCode(t, "approve an unknown instance", err, "InvalidParameter")
}

// TestOrchestrationServiceState suspends and resumes automatic repairs with
// the SDK and az 2.45, as the instance view shows.
func TestOrchestrationServiceState(t *testing.T) {
	e := armtest.NewEnv(t)
	newInstEnv(t, e)
	set := func(service armcompute.OrchestrationServiceNames, action armcompute.OrchestrationServiceStateAction) error {
		p, err := e.VMSS.BeginSetOrchestrationServiceState(e.Ctx, "rg", "web", armcompute.OrchestrationServiceStateInput{
			ServiceName: to.Ptr(service), Action: to.Ptr(action)}, nil)
		if err != nil {
			return err
		}
		_, err = p.PollUntilDone(e.Ctx, armtest.Poll)
		return err
	}
	state := func() string {
		t.Helper()
		v, err := e.VMSS.GetInstanceView(e.Ctx, "rg", "web", nil)
		if err != nil {
			t.Fatal(err)
		}
		return string(*v.OrchestrationServices[0].ServiceState)
	}
	err := set(armcompute.OrchestrationServiceNamesAutomaticRepairs, armcompute.OrchestrationServiceStateActionSuspend)
	armtest.WantCode(t, "suspend repairs that are not enabled", err, "OperationNotAllowed")
	vmss := e.RGPath("rg", "Microsoft.Compute/virtualMachineScaleSets/web") + "?api-version=2024-07-01"
	if st, _, b := e.Do(http.MethodPatch, vmss, map[string]any{"properties": map[string]any{
		"automaticRepairsPolicy": map[string]any{"enabled": true, "gracePeriod": "PT10M"}}}); st != http.StatusOK {
		t.Fatalf("enable repairs: %d %s", st, b)
	}
	if s := state(); s != "Running" {
		t.Fatalf("repairs %s; want Running", s)
	}
	if err := set(armcompute.OrchestrationServiceNamesAutomaticRepairs, armcompute.OrchestrationServiceStateActionSuspend); err != nil {
		t.Fatal(err)
	}
	if s := state(); s != "Suspended" {
		t.Fatalf("repairs %s after suspend; want Suspended", s)
	}
	kv, err := e.Store.Get(e.Ctx, resource.ScaleSetStateKey(e.ID("Microsoft.Compute/virtualMachineScaleSets/web")))
	if st, _ := resource.DecodeScaleSetState(kv.Value); err != nil || !st.IsSuspended(resource.ServiceAutomaticRepairs) {
		t.Fatalf("the controller's state record does not say suspended: %v %s", err, kv.Value)
	}
	env := armtest.LoginAZ(t, e.Node)
	armtest.RunAZ(t, env, "vmss", "set-orchestration-service-state", "-g", "rg", "-n", "web", "--service-name", "AutomaticRepairs", "--action", "Resume")
	if s := state(); s != "Running" {
		t.Fatalf("repairs %s after az resume; want Running", s)
	}
	out := armtest.RunAZ(t, env, "vmss", "get-instance-view", "-g", "rg", "-n", "web", "--query", "orchestrationServices[0].serviceState", "-o", "tsv")
	if strings.TrimSpace(string(out)) != "Running" {
		t.Errorf("az get-instance-view: %s", out)
	}
	if err := set("Teleport", armcompute.OrchestrationServiceStateActionSuspend); err == nil {
		t.Error("an unknown service name was accepted")
	}
}

// TestScaleSetOperations: scaleOut, reapply, performMaintenance, skus, a
// route that does not exist, and the rolling-upgrade commands of az 2.45.
func TestScaleSetOperations(t *testing.T) {
	e := armtest.NewEnv(t)
	newInstEnv(t, e)
	base := e.RGPath("rg", "Microsoft.Compute/virtualMachineScaleSets/web")
	const v = "?api-version=2024-11-01"
	for _, tc := range []struct {
		path string
		body any
		want int
		code string
	}{
		{"/scaleOut", map[string]any{"capacity": 5}, http.StatusAccepted, ""},
		{"/scaleOut", map[string]any{"capacity": 2}, http.StatusBadRequest, "InvalidParameter"},
		{"/scaleOut", map[string]any{}, http.StatusBadRequest, "InvalidParameter"},
		{"/reapply", nil, http.StatusAccepted, ""},
		{"/performMaintenance", map[string]any{"instanceIds": []string{"0"}}, http.StatusAccepted, ""},
		{"/virtualMachines/0/approveRollingUpgrade", nil, http.StatusAccepted, ""},
		{"/convertToSinglePlacementGroup", map[string]any{"activePlacementGroupId": "pg1"}, http.StatusOK, ""},
	} {
		st, _, b := e.Do(http.MethodPost, base+tc.path+v, tc.body)
		if st != tc.want || tc.code != "" && !strings.Contains(string(b), tc.code) {
			t.Errorf("POST %s %v: %d %s; want %d %s", tc.path, tc.body, st, b, tc.want, tc.code)
		}
	}
	if got := instScaleSet(t, e.Node, "web").Capacity(); got != 5 {
		t.Errorf("capacity after scaleOut %d; want 5", got)
	}
	if spg := instScaleSet(t, e.Node, "web").Properties.SinglePlacementGroup; spg == nil || *spg {
		t.Errorf("singlePlacementGroup after convertToSinglePlacementGroup: %v; want false", spg)
	}
	pager := e.VMSS.NewListSKUsPager("rg", "web", nil)
	n := 0
	for pager.More() {
		page, err := pager.NextPage(e.Ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range page.Value {
			if *s.Capacity.Maximum != 1000 || *s.ResourceType != "Microsoft.Compute/virtualMachineScaleSets" {
				t.Errorf("sku %+v", s)
			}
			n++
		}
	}
	if n == 0 {
		t.Error("no skus")
	}
	st, _, b := e.Do(http.MethodGet, base+"/teleporters/x"+v, nil)
	if st != http.StatusNotFound || !strings.Contains(string(b), "'virtualMachineScaleSets/teleporters'") {
		t.Errorf("missing child route: %d %s; want the type path named", st, b)
	}

	env := armtest.LoginAZ(t, e.Node)
	armtest.RunAZ(t, env, "vmss", "rolling-upgrade", "start", "-g", "rg", "-n", "web")
	out := armtest.RunAZ(t, env, "vmss", "rolling-upgrade", "get-latest", "-g", "rg", "-n", "web", "-o", "json")
	var latest struct {
		RunningStatus struct{ Code, LastAction string }
	}
	if err := json.Unmarshal(out, &latest); err != nil || latest.RunningStatus.Code != "Completed" || latest.RunningStatus.LastAction != "Start" {
		t.Errorf("az vmss rolling-upgrade get-latest: %v %s", err, out)
	}
	if _, stderr, err := armtest.TryAZ(t, env, "vmss", "rolling-upgrade", "cancel", "-g", "rg", "-n", "web"); err == nil || !strings.Contains(stderr, "no rolling upgrade in progress") {
		t.Errorf("az vmss rolling-upgrade cancel with nothing running: %v %s", err, stderr)
	}
	armtest.RunAZ(t, env, "vmss", "perform-maintenance", "-g", "rg", "-n", "web")
	out = armtest.RunAZ(t, env, "vmss", "list-skus", "-g", "rg", "-n", "web", "--query", "[0].capacity.maximum", "-o", "tsv")
	if strings.TrimSpace(string(out)) != "1000" {
		t.Errorf("az vmss list-skus: %s", out)
	}
}

// TestScaleSetExtensions: extensions as child resources with the SDK and
// az 2.45: they are the model's extensionProfile, protectedSettings is
// stored and never returned.
func TestScaleSetExtensions(t *testing.T) {
	e := armtest.NewEnv(t)
	newInstEnv(t, e)
	exts, err := armcompute.NewVirtualMachineScaleSetExtensionsClient(e.Sub, e.Cred, e.Options)
	if err != nil {
		t.Fatal(err)
	}
	p, err := exts.BeginCreateOrUpdate(e.Ctx, "rg", "web", "cs", armcompute.VirtualMachineScaleSetExtension{Properties: &armcompute.VirtualMachineScaleSetExtensionProperties{
		Publisher: to.Ptr("Microsoft.Azure.Extensions"), Type: to.Ptr("CustomScript"), TypeHandlerVersion: to.Ptr("2.1"),
		Settings: map[string]any{"commandToExecute": "echo hi"}, ProtectedSettings: map[string]any{"secret": "s3cr3t"},
		AutoUpgradeMinorVersion: to.Ptr(true)}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := p.PollUntilDone(e.Ctx, armtest.Poll)
	if err != nil {
		t.Fatal(err)
	}
	if *res.Name != "cs" || *res.Properties.Type != "CustomScript" || *res.Properties.ProvisioningState != "Succeeded" || res.Properties.ProtectedSettings != nil {
		t.Errorf("PUT answer %+v", res.Properties)
	}
	got, err := exts.Get(e.Ctx, "rg", "web", "cs", nil)
	if err != nil || got.Properties.ProtectedSettings != nil || !*got.Properties.AutoUpgradeMinorVersion {
		t.Fatalf("GET %+v %v", got, err)
	}
	prof := instScaleSet(t, e.Node, "web").Properties.VirtualMachineProfile.ExtensionProfile
	if !strings.Contains(string(prof), "s3cr3t") || !strings.Contains(string(prof), `"commandToExecute":"echo hi"`) {
		t.Errorf("stored extension profile %s", prof)
	}
	env := armtest.LoginAZ(t, e.Node)
	out := armtest.RunAZ(t, env, "vmss", "extension", "list", "-g", "rg", "--vmss-name", "web", "--query", "[].name", "-o", "tsv")
	if strings.TrimSpace(string(out)) != "cs" {
		t.Errorf("az vmss extension list: %s", out)
	}
	armtest.RunAZ(t, env, "vmss", "extension", "set", "-g", "rg", "--vmss-name", "web", "-n", "HealthExtension",
		"--publisher", "Microsoft.ManagedServices", "--version", "1.0", "--settings", `{"protocol": "tcp", "port": 80}`, "-o", "none")
	out = armtest.RunAZ(t, env, "vmss", "extension", "show", "-g", "rg", "--vmss-name", "web", "-n", "HealthExtension", "--query", "settings.port", "-o", "tsv")
	if strings.TrimSpace(string(out)) != "80" {
		t.Errorf("az vmss extension show: %s", out)
	}
	if !strings.Contains(string(instScaleSet(t, e.Node, "web").Properties.VirtualMachineProfile.ExtensionProfile), "s3cr3t") {
		t.Error("az's extension set (a scale-set PUT without protectedSettings) lost the other extension's protected settings")
	}
	armtest.RunAZ(t, env, "vmss", "extension", "delete", "-g", "rg", "--vmss-name", "web", "-n", "cs")
	if _, err := exts.Get(e.Ctx, "rg", "web", "cs", nil); err == nil {
		t.Error("the deleted extension is still there")
	}
}
