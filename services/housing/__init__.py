"""Housing (宿管中心): buildings, rooms, beds, who sleeps where, and releases when students leave."""
