package resource

// ruleErr returns a 400 *Error with code, target (the JSON path of the
// offending field, "" when the rule spans several) and message.
func ruleErr(code, target, format string, args ...any) *Error {
	e := BadRequest(code, format, args...)
	e.Target = target
	return e
}

// Error codes nimbus uses for LB and VMSS validation. Codes quoted from
// Azure where Azure's are documented (azure-behavior.md §1, §2); the others
// are nimbus's own, named in Azure's style.
const (
	CodeInvalidParameter                    = "InvalidParameter"
	CodeInvalidRequestContent               = "InvalidRequestContent"
	CodeInvalidResourceReference            = "InvalidResourceReference"
	CodeInvalidJSONReferenceWrongType       = "InvalidJsonReferenceWrongType"
	CodeDuplicateResourceName               = "DuplicateResourceName"
	CodeBadRequest                          = "BadRequest"
	CodePropertyChangeNotAllowed            = "PropertyChangeNotAllowed"
	CodeCannotModifyRuleUsedByProbeUsedByVM = "CannotModifyRuleUsedByProbeUsedByVMSS"
	CodeCannotRemoveRuleUsedByProbeUsedByVM = "CannotRemoveRuleUsedByProbeUsedByVMSS"
	CodeCannotUseInactiveHealthProbe        = "CannotUseInactiveHealthProbe"
	CodePublicIPAndLBSkuDoNotMatch          = "PublicIPAndLBSkuDoNotMatch"
	CodeDifferentSkuInVMSS                  = "DifferentSkuLoadBalancerAndPublicIPAddressNotAllowedInVMSS"
	CodeMustDisableSNAT                     = "LoadBalancingRuleMustDisableSNATSinceSameFrontendIPConfigurationIsReferencedByOutboundRule"
	CodeLoadBalancerInUseByVMSS             = "LoadBalancerInUseByVirtualMachineScaleSet"
	CodeBackendPoolInUseByVMSS              = "BackendAddressPoolInUseByVirtualMachineScaleSet"
	CodeNatPoolInUseByVMSS                  = "InboundNatPoolInUseByVirtualMachineScaleSet"
	CodeProbeInUseByVMSS                    = "ProbeInUseByVirtualMachineScaleSet"
	CodeAllocatedPortsNotMultipleOf8        = "SpecifiedAllocatedOutboundPortsForOutboundRuleIsNotAMultipleOfEight"
	CodeAllocatedPortsExceedPerRule         = "SpecifiedAllocatedOutboundPortsForOutboundRuleExceedsTotalNumberOfAllowedPortsPerRule"
	CodeAllocatedPortsExceedAvailable       = "SpecifiedAllocatedOutboundPortsForOutboundRuleExceedsTotalNumberOfAvailablePorts"
	CodeMoreThanOneOutboundRule             = "MoreThanOneOutboundRuleUsingSameFrontendIPConfigurationAndProtocolIsNotSupported"
	CodeNatRulesWithNatPool                 = "AddingOrUpdatingNatRulesWhenNatPoolIsPresentOnLoadbalancerIsNotSupported"
	CodeRulesUseSameBackendPortProtocolPool = "RulesUseSameBackendPortProtocolAndPool"
	CodeInternalLBOutboundRules             = "OutboundRulesNotSupportedForInternalLoadBalancer"
	CodeBasicLBOutboundRules                = "OutboundRulesNotSupportedForBasicSkuLoadBalancer"
	CodeWithoutFrontendNoChildren           = "LoadBalancerWithoutFrontendIPCantHaveChildResources"
	CodeNatPoolRangesOverlap                = "InboundNatPoolFrontendPortRangesOverlap"
	CodeFrontendPortConflict                = "FrontendPortConflictOnFrontendIPConfiguration"
	CodeSkuCannotBeUpdated                  = "LoadBalancerSkuCannotBeUpdated"
	CodeHTTPSProbeNeedsStandard             = "HttpsProbeNotSupportedForBasicSkuLoadBalancer"
	CodeProbeRequestPathRequired            = "ProbeRequestPathRequiredForHttpAndHttps"
	CodeProbeRequestPathNotAllowed          = "ProbeRequestPathNotAllowedForTcp"
	CodeMultipleLBsOfSameType               = "VMScaleSetCannotUseMultipleLoadBalancersOfSameType"
	CodePublicIPInUse                       = "PublicIPAddressInUse"
	CodeFrontendNeedsOneAddress             = "FrontendIPConfigurationMustReferenceOneAddress"
	CodeNatPoolNotForFlexible               = "InboundNatPoolNotSupportedForFlexibleOrchestrationMode"
)
