package scim

import "strings"

// Project applies the attributes / excludedAttributes parameters (RFC 7644 section
// 3.4.2.5) to a resource in place. id, schemas and meta are always returned (meta is the
// only "default" one we keep under attributes=, as clients key their caches on it);
// attribute names match case-insensitively and may carry a schema URN prefix or a
// sub-attribute ("name.givenName"). A bracketed filter after a name
// ("emails[type eq \"work\"]") is treated as the name alone.
func Project(rt *ResourceType, res Resource, attributes, excluded []string) {
	if len(attributes) > 0 {
		keep := map[string]map[string]bool{} // container key ("" core, URN) -> attr -> true
		subs := map[string][]string{}        // container/attr -> subs
		for _, a := range attributes {
			ext, canonical, sub := splitAttr(rt, a)
			if keep[ext] == nil {
				keep[ext] = map[string]bool{}
			}
			keep[ext][canonical] = true
			if sub != "" {
				subs[ext+"|"+canonical] = append(subs[ext+"|"+canonical], sub)
			} else {
				subs[ext+"|"+canonical] = append(subs[ext+"|"+canonical], "*")
			}
		}
		for k, v := range res {
			switch k {
			case "id", "schemas", "meta":
				continue
			}
			if rt.Extension(k) != nil {
				m, _ := v.(map[string]any)
				if keep[k] == nil || m == nil {
					delete(res, k)
					continue
				}
				if keep[k][""] {
					continue
				}
				for ak := range m {
					if !keep[k][ak] {
						delete(m, ak)
					} else {
						trimSubs(m, ak, subs[k+"|"+ak])
					}
				}
				if len(m) == 0 {
					delete(res, k)
				}
				continue
			}
			if !keep[""][k] {
				delete(res, k)
				continue
			}
			trimSubs(res, k, subs["|"+k])
		}
	}
	for _, a := range excluded {
		ext, canonical, sub := splitAttr(rt, a)
		if canonical == "id" || canonical == "schemas" {
			continue
		}
		container := res
		if ext != "" {
			m, ok := res[ext].(map[string]any)
			if !ok {
				continue
			}
			container = m
		}
		if sub == "" {
			delete(container, canonical)
		} else {
			for _, el := range asList(container[canonical]) {
				if m, ok := el.(map[string]any); ok {
					delete(m, sub)
				}
			}
		}
		if ext != "" && len(container) == 0 {
			delete(res, ext)
		}
	}
}

// Excludes tells whether the excludedAttributes list names attr (a core attribute).
func Excludes(excluded []string, attr string) bool {
	for _, a := range excluded {
		if strings.EqualFold(a, attr) || strings.EqualFold(a, SchemaGroup+":"+attr) || strings.EqualFold(a, SchemaUser+":"+attr) {
			return true
		}
	}
	return false
}

// Includes tells whether an attributes list (empty means everything) returns attr.
func Includes(attributes []string, attr string) bool {
	if len(attributes) == 0 {
		return true
	}
	for _, a := range attributes {
		base, _, _ := strings.Cut(a, "[")
		base, _, _ = strings.Cut(base, ".")
		if strings.EqualFold(base, attr) || strings.EqualFold(a, SchemaGroup+":"+attr) {
			return true
		}
	}
	return false
}

func trimSubs(container map[string]any, key string, subs []string) {
	for _, s := range subs {
		if s == "*" {
			return
		}
	}
	trim := func(m map[string]any) {
		for k := range m {
			found := false
			for _, s := range subs {
				if strings.EqualFold(s, k) {
					found = true
				}
			}
			if !found {
				delete(m, k)
			}
		}
	}
	switch t := container[key].(type) {
	case map[string]any:
		trim(t)
	case []any:
		for _, el := range t {
			if m, ok := el.(map[string]any); ok {
				trim(m)
			}
		}
	}
}

func splitAttr(rt *ResourceType, a string) (ext, canonical, sub string) {
	a, _, _ = strings.Cut(a, "[")
	uri, rest := rt.splitURN(strings.TrimSpace(a))
	if uri != "" && rest == "" {
		return uri, "", ""
	}
	name, sub, _ := strings.Cut(rest, ".")
	e, attr, canonical := rt.lookup(uri, name)
	if attr != nil && sub != "" {
		if s := attr.Sub(sub); s != nil {
			sub = s.Name
		}
	}
	return e, canonical, sub
}
