//! Secrets: the placeholder a secret travels as, its value put in by the host that
//! serves the action, and masked (`***`) wherever it would show.
//!
//! A workflow's secret never crosses the bus or reaches a file: the runner sends
//! `${{ secrets.NAME }}`, the serving host puts in the value from its own
//! environment and masks it in the results, progress, logs and errors it returns.

use serde_json::Value;

/// The placeholder a secret named `name` travels as.
pub fn placeholder(name: &str) -> String {
    format!("${{{{ secrets.{name} }}}}")
}

/// Puts secret values in for their placeholders (on the host that serves the action);
/// returns the values used, to be masked in what comes back.
pub fn insert(
    value: &mut Value,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<String>, String> {
    let mut used = Vec::new();
    insert_into(value, lookup, &mut used)?;
    Ok(used)
}

fn insert_into(
    value: &mut Value,
    lookup: &dyn Fn(&str) -> Option<String>,
    used: &mut Vec<String>,
) -> Result<(), String> {
    match value {
        Value::String(text) if text.contains("${{") => {
            *text = insert_text(text, lookup, used)?;
            Ok(())
        }
        Value::Array(items) => items
            .iter_mut()
            .try_for_each(|v| insert_into(v, lookup, used)),
        Value::Object(map) => map
            .values_mut()
            .try_for_each(|v| insert_into(v, lookup, used)),
        _ => Ok(()),
    }
}

/// `text` with every `${{ secrets.NAME }}` replaced by its value; any other
/// `${{ … }}` is an error (the runner resolves those before sending).
fn insert_text(
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    used: &mut Vec<String>,
) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 3..];
        let end = after
            .find("}}")
            .ok_or_else(|| format!("`{text}` opens `${{{{` without closing it"))?;
        let inner = after[..end].trim();
        let name = inner
            .strip_prefix("secrets.")
            .filter(|name| is_name(name))
            .ok_or_else(|| format!("unresolved reference `${{{{ {inner} }}}}`"))?;
        let secret = lookup(name)
            .ok_or_else(|| format!("secret `{name}` is not set on the host serving this action"))?;
        out.push_str(&secret);
        if !secret.is_empty() {
            used.push(secret);
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// A secret's name: letters, digits, `_` and `-`.
fn is_name(text: &str) -> bool {
    !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Replaces every secret value in `text` with `***`.
pub fn mask(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_string();
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        out = out.replace(secret.as_str(), "***");
    }
    out
}

/// Masks secret values in every string of `value`.
pub fn mask_value(value: &mut Value, secrets: &[String]) {
    if secrets.is_empty() {
        return;
    }
    match value {
        Value::String(text) => *text = mask(text, secrets),
        Value::Array(items) => items.iter_mut().for_each(|v| mask_value(v, secrets)),
        Value::Object(map) => map.values_mut().for_each(|v| mask_value(v, secrets)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn token(name: &str) -> Option<String> {
        (name == "TOKEN").then(|| "s3cr3t".to_string())
    }

    #[test]
    fn secrets_are_inserted_and_masked() {
        let mut value =
            json!({"token": "Bearer ${{ secrets.TOKEN }}", "list": [placeholder("TOKEN")]});
        let used = insert(&mut value, &token).unwrap();
        assert_eq!(value["token"], json!("Bearer s3cr3t"));
        assert_eq!(value["list"][0], json!("s3cr3t"));
        let mut out = json!({"echo": "Bearer s3cr3t"});
        mask_value(&mut out, &used);
        assert_eq!(out["echo"], json!("Bearer ***"));
    }

    #[test]
    fn only_secrets_are_inserted() {
        let unset = insert(&mut json!("${{ secrets.NOPE }}"), &token).unwrap_err();
        assert!(unset.contains("`NOPE` is not set"), "{unset}");
        let other = insert(&mut json!("${{ steps.a.outputs.b }}"), &token).unwrap_err();
        assert!(
            other.contains("unresolved reference `${{ steps.a.outputs.b }}`"),
            "{other}"
        );
        let open = insert(&mut json!("x ${{ secrets.TOKEN"), &token).unwrap_err();
        assert!(open.contains("without closing it"), "{open}");
        let mut plain = json!("no placeholder $HOME");
        assert!(insert(&mut plain, &token).unwrap().is_empty());
        assert_eq!(plain, json!("no placeholder $HOME"));
    }
}
