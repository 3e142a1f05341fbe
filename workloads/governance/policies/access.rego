# Access decisions of the data platform: who may read which table, column and vector collection, and how a
# column the caller may not see in clear is masked. Evaluated embedded (regorus) or by an OPA server
# (`DP_OPA_URL`); both load this file and the same data document, `data.dp_policy`: the access policy YAML
# (roles, pii_columns, masking, masks) as JSON (`python -m workloads.governance policy bundle`).
#
# Every decision names the rule that decided it (`rule`) and says why (`reason`), so refusals can be explained
# and audited.
#
# Role-based: a role grants table and collection globs and may deny tables or columns (deny wins).
# Attribute-based: a column is personal data when its table classifies it (`dp.classifications` /
# `dp.pii.columns` table properties, written from catalog metadata) or a `pii_columns` glob matches it; roles
# whose `pii` attribute is false see such columns masked, with the mask its classification calls for
# (`masks`), else the policy's default (`masking`).
package dp.access

import rego.v1

policy := data.dp_policy

role_name := input.subject.role

role := policy.roles[role_name]

# The first glob of `globs` matching `name` (case-insensitive; `*` also matches dots, like fnmatch).
first_match(globs, name) := matches[0] if {
	matches := [g | some g in globs; glob.match(lower(g), null, lower(name))]
	count(matches) > 0
}

undefined_role := {
	"allowed": false, "rule": "roles",
	"reason": sprintf("role '%s' is not defined in the policy", [role_name]),
}

# --- tables -------------------------------------------------------------------------------------------------

table_decision := undefined_role if not role

else := decision if {
	g := first_match(object.get(role, "deny_tables", []), input.resource.table)
	decision := {
		"allowed": false, "rule": sprintf("roles.%s.deny_tables '%s'", [role_name, g]),
		"reason": sprintf("role %s may not read %s", [role_name, input.resource.table]),
	}
}

else := decision if {
	g := first_match(object.get(role, "tables", []), input.resource.table)
	decision := {
		"allowed": true, "rule": sprintf("roles.%s.tables '%s'", [role_name, g]),
		"reason": sprintf("role %s may read %s", [role_name, input.resource.table]),
	}
}

else := {
	"allowed": false, "rule": sprintf("roles.%s.tables", [role_name]),
	"reason": sprintf("no table rule of role %s grants %s", [role_name, input.resource.table]),
}

# --- vector collections ---------------------------------------------------------------------------------------

collection_decision := undefined_role if not role

else := decision if {
	g := first_match(object.get(role, "collections", []), input.resource.collection)
	decision := {
		"allowed": true, "rule": sprintf("roles.%s.collections '%s'", [role_name, g]),
		"reason": sprintf("role %s may search %s", [role_name, input.resource.collection]),
	}
}

else := {
	"allowed": false, "rule": sprintf("roles.%s.collections", [role_name]),
	"reason": sprintf("no collection rule of role %s grants %s", [role_name, input.resource.collection]),
}

# --- columns: one decision per column of input.resource.columns ------------------------------------------------

# Why a column counts as personal data, or "" when it does not.
pii_rule(column) := sprintf("classification %s (table property dp.classifications)", [column.classification]) if {
	startswith(object.get(column, "classification", ""), "pii.")
}

else := "table property dp.pii.columns" if column.tagged_pii

else := sprintf("pii_columns '%s'", [g]) if {
	g := first_match(object.get(policy, "pii_columns", []), sprintf("%s.%s", [input.resource.table, column.name]))
}

else := ""

mask_for(column) := policy.masks[column.classification] if column.classification

else := object.get(policy, "masking", "redact")

column_decision(column) := decision if {
	g := first_match(object.get(role, "deny_columns", []), sprintf("%s.%s", [input.resource.table, column.name]))
	decision := {
		"name": column.name, "access": "denied", "pii": pii_rule(column) != "",
		"rule": sprintf("roles.%s.deny_columns '%s'", [role_name, g]),
		"reason": sprintf("role %s may not read column %s", [role_name, column.name]),
	}
}

else := decision if {
	why := pii_rule(column)
	why != ""
	not role.pii
	decision := {
		"name": column.name, "access": "masked", "pii": true, "mask": mask_for(column),
		"rule": sprintf("%s; roles.%s.pii is false", [why, role_name]),
		"reason": sprintf("%s holds personal data and role %s may not read it in clear", [column.name, role_name]),
	}
}

else := decision if {
	why := pii_rule(column)
	why != ""
	decision := {
		"name": column.name, "access": "clear", "pii": true,
		"rule": sprintf("%s; roles.%s.pii is true", [why, role_name]),
		"reason": sprintf("role %s may read personal data in clear", [role_name]),
	}
}

else := {
	"name": column.name, "access": "clear", "pii": false, "rule": sprintf("roles.%s", [role_name]),
	"reason": sprintf("%s is not personal data", [column.name]),
}

column_decisions := [column_decision(c) | some c in input.resource.columns] if role

else := [{"name": c.name, "access": "denied", "pii": false, "rule": "roles", "reason": undefined_role.reason} |
	some c in input.resource.columns
]
