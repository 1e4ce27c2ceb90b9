package compute_test

import (
	"testing"

	"nimbus/internal/arm/armtest"
)

// computeGaps are the scale-set spec examples nimbus does not answer in
// full, and why.
var computeGaps = map[string]string{
	"VirtualMachineScaleSetExtension_CreateOrUpdate_MaximumSet_Gen.json":                   "the example's answer names the extension otherwise than its URL does",
	"VirtualMachineScaleSet_Create_WithAutomaticRepairs.json":                              "refused as Azure refuses it: automatic repairs without a health probe or extension",
	"VirtualMachineScaleSet_Create_WithSecurityPostureReference.json":                      "location eastus2euap (a canary region) is not one nimbus lists",
	"VirtualMachineScaleSet_Create_WithServiceArtifactReference.json":                      "location eastus2euap (a canary region) is not one nimbus lists",
	"VirtualMachineScaleSet_Create_WithSkuProfile.json":                                    "Flexible without platformFaultDomainCount is refused, as Azure's validation does",
	"VirtualMachineScaleSet_Create_WithSkuProfile_Prioritized.json":                        "Flexible without platformFaultDomainCount is refused, as Azure's validation does",
	"VirtualMachineScaleSet_Create_FromWithDisableTcpStateTrackingNetworkInterface.json":   "the answer has enableFpga, which the request did not send (a default Azure fills for this VM size only)",
	"VirtualMachineScaleSet_Create_FromWithNetworkInterfaceWithDnsSettings.json":           "the answer has enableFpga, which the request did not send (a default Azure fills for this VM size only)",
	"VirtualMachineScaleSet_Create_WithDiskControllerType.json":                            "the answer has a bootDiagnostics storage account the request did not name",
	"VirtualMachineScaleSet_Create_WithUserData.json":                                      "the answer has a bootDiagnostics storage account the request did not name",
	"VirtualMachineScaleSet_Create_WithVMSizeProperties.json":                              "the answer has a bootDiagnostics storage account the request did not name",
	"VirtualMachineScaleSet_Create_WithHighSpeedInterconnectPlacement.json":                "the answer lists empty pool arrays nimbus leaves out",
	"VirtualMachineScaleSet_Create_WithPriorityMixPolicy.json":                             "the answer lists empty pool arrays nimbus leaves out",
	"VirtualMachineScaleSet_Create_WithSecurityTypeConfidentialVMWithNonPersistedTPM.json": "the answer has a windowsConfiguration for an image nimbus takes for Linux",
	"VirtualMachineScaleSet_Create_WithVMsInDifferentZones.json":                           "the answer has zoneBalance, which the request did not send",
}

// TestSpecExamplesRoundTrip PUTs every scale-set spec example (generated
// from the Azure SDK for Go's examples, which are the REST API spec's) and
// checks the GET answers every field of the example's answer.
func TestSpecExamplesRoundTrip(t *testing.T) {
	armtest.RunExamples(t, "testdata/arm-examples/sdk", "*.json", computeGaps)
}
