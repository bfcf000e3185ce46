use mlua::{Lua, Table};
/// The `cjson` table.
pub fn open(lua: &Lua) -> mlua::Result<Table> { lua.create_table() }
